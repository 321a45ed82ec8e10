#include "test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgeq::test {

std::string SourceDir() { return EDGEQ_SOURCE_DIR; }

std::string SharedDir() {
  if (const char* env = std::getenv("EDGEQ_SHARED_DIR")) return env;
  std::string d = SourceDir() + "/../shared";
  struct stat st {};
  if (stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return d;
  return "";
}

bool SharedAvailable() {
  static const bool ok = [] {
    bool present = !SharedDir().empty();
    if (!present) std::fprintf(stderr, "NOTE: ../shared is absent; tests that need it are SKIPPED\n");
    return present;
  }();
  return ok;
}

std::string EdgeqBinary() { return EDGEQ_BINARY; }

std::string TempDir() {
  static const std::string dir = [] {
    std::string tmpl = "/tmp/edgeq_test_XXXXXX";
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) return std::string("/tmp");
    // Removed when the test process exits normally (EDGEQ_KEEP_TEST_TMP=1 keeps it for a
    // post-mortem); a crashed test leaves its files behind on purpose.
    // (The handler runs after static strings are destroyed: it keeps its own copy.)
    static const std::string* const path = new std::string(p);
    std::atexit([] {
      if (std::getenv("EDGEQ_KEEP_TEST_TMP") != nullptr) return;
      std::error_code ec;
      std::filesystem::remove_all(*path, ec);
    });
    return std::string(p);
  }();
  return dir;
}

static std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CmdResult RunEdgeq(const std::string& args, const std::string& stdin_text) {
  static int counter = 0;
  std::string base = TempDir() + "/cmd" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  std::string in = "/dev/null";
  if (!stdin_text.empty()) {
    in = base + ".in";
    std::ofstream(in, std::ios::binary) << stdin_text;
  }
  std::string cmd = EdgeqBinary() + " " + args + " >" + base + ".out 2>" + base + ".err <" + in;
  int rc = std::system(cmd.c_str());
  CmdResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  return r;
}

}  // namespace edgeq::test
