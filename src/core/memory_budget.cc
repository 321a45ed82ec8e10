#include "core/memory_budget.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace edgeq {

namespace {

bool ReadU64File(const char* path, uint64_t* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string s;
  in >> s;
  if (s.empty() || s == "max") return false;  // "max": no limit
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str()) return false;
  *out = v;
  return true;
}

// A "key value" line of a memory.stat file.
bool ReadStat(const char* path, const char* key, uint64_t* out) {
  std::ifstream in(path);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) {
      *out = v;
      return true;
    }
  }
  return false;
}

bool MemAvailableFromProc(uint64_t* out) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) {
      *out = kb * 1024;
      return true;
    }
  }
  return false;
}

// Limit minus usage that cannot be reclaimed (usage counts the page cache, which includes
// the mapped model file: inactive file pages are given back under pressure).
bool CgroupAvailable(uint64_t* out, std::string* source) {
  uint64_t limit = 0, usage = 0, inactive = 0;
  if (ReadU64File("/sys/fs/cgroup/memory.max", &limit) && ReadU64File("/sys/fs/cgroup/memory.current", &usage)) {
    ReadStat("/sys/fs/cgroup/memory.stat", "inactive_file", &inactive);
    *source = "cgroup memory.max";
  } else if (ReadU64File("/sys/fs/cgroup/memory/memory.limit_in_bytes", &limit) &&
             ReadU64File("/sys/fs/cgroup/memory/memory.usage_in_bytes", &usage)) {
    if (limit >= (uint64_t{1} << 60)) return false;  // v1 reports "no limit" as ~2^63
    if (!ReadStat("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file", &inactive)) {
      ReadStat("/sys/fs/cgroup/memory/memory.stat", "inactive_file", &inactive);
    }
    *source = "cgroup memory.limit_in_bytes";
  } else {
    return false;
  }
  const uint64_t used = usage > inactive ? usage - inactive : 0;
  *out = limit > used ? limit - used : 0;
  return true;
}

}  // namespace

std::string FormatBytes(uint64_t b) {
  char buf[64];
  if (b >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1 << 30));
  } else if (b >= (uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes", b);
  }
  return buf;
}

MemoryAvailability AvailableMemory() {
  MemoryAvailability a;
  if (const char* env = std::getenv("EDGEQ_MEMORY_LIMIT_BYTES"); env != nullptr && env[0] != 0) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno == 0 && end != env && *end == 0) {
      a.bytes = v;
      a.source = "EDGEQ_MEMORY_LIMIT_BYTES";
      a.known = true;
      return a;
    }
    // An unparsable value is ignored (the real figure is used).
  }
  uint64_t v = 0;
  if (MemAvailableFromProc(&v)) {
    a.bytes = v;
    a.source = "MemAvailable in /proc/meminfo";
    a.known = true;
  }
  std::string src;
  if (CgroupAvailable(&v, &src) && (!a.known || v < a.bytes)) {
    a.bytes = v;
    a.source = src;
    a.known = true;
  }
  return a;
}

Status CheckMemoryFits(uint64_t need, const std::string& what, const std::string& detail) {
  const MemoryAvailability a = AvailableMemory();
  if (!a.known || need <= a.bytes) return Status::Ok();
  std::string msg = what + " needs " + FormatBytes(need);
  if (!detail.empty()) msg += " (" + detail + ")";
  msg += " but only " + FormatBytes(a.bytes) + " of memory is available (" + a.source + ")";
  return ResourceExhausted(msg);
}

}  // namespace edgeq
