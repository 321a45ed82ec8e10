// Shared test helpers: where the repo and ../shared are, and a way to run the CLI.
#pragma once

#include <string>

namespace edgeq::test {

std::string SourceDir();           // repo root
std::string SharedDir();           // ../shared beside the repo ("" when absent)
bool SharedAvailable();            // prints a clear note when absent
std::string EdgeqBinary();         // path of the built CLI
std::string TempDir();             // a fresh per-process temp dir, removed at normal exit

struct CmdResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs `args` (shell-quoted by the caller) with the edgeq binary.
CmdResult RunEdgeq(const std::string& args, const std::string& stdin_text = "");

}  // namespace edgeq::test

// Skips the current test with a loud message when ../shared is not there.
#define REQUIRE_SHARED()                                                              \
  do {                                                                                \
    if (!::edgeq::test::SharedAvailable())                                            \
      GTEST_SKIP() << "../shared is absent: this test needs it (CI provides it)";     \
  } while (0)
