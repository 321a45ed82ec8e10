// How much memory edgeq may still allocate, and the check made before large allocations
// (weights repacked at load, KV cache + activation arena per session/server): a model or
// a cache that cannot fit gives a clear error naming the sizes before any work starts,
// instead of an OOM kill (or thrashing) half-way.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace edgeq {

struct MemoryAvailability {
  uint64_t bytes = 0;      // what may still be allocated
  std::string source;      // where the figure comes from, for error messages
  bool known = false;      // false: nothing could be read (no check is made)
};

// The smallest of: MemAvailable (/proc/meminfo), the cgroup limit minus the cgroup's
// non-reclaimable usage (cgroup v2 memory.max, or v1 memory.limit_in_bytes).
// EDGEQ_MEMORY_LIMIT_BYTES=<n> replaces the figure (tests, or to keep headroom on a device
// that runs other things); read at every call.
MemoryAvailability AvailableMemory();

// ResourceExhausted "<what> needs N MiB (<detail>) but only M MiB is available (<source>)"
// when `need` exceeds the available figure; Ok otherwise (or when it is unknown).
Status CheckMemoryFits(uint64_t need, const std::string& what, const std::string& detail = "");

// "12.3 MiB" / "1.50 GiB" / "512 bytes".
std::string FormatBytes(uint64_t bytes);

}  // namespace edgeq
