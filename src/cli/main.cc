// edgeq: one binary, llama.cpp-style subcommands.
#include <cstdio>
#include <vector>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"edgeq: run LLMs on edge CPUs with dynamic quantization"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgeq 0.1.0");
  std::vector<edgeq::cli::Command> cmds = {
      edgeq::cli::RegisterRun(app),      edgeq::cli::RegisterChat(app),
      edgeq::cli::RegisterTokenize(app), edgeq::cli::RegisterInfo(app),
      edgeq::cli::RegisterPerplexity(app), edgeq::cli::RegisterConvert(app),
      edgeq::cli::RegisterBench(app),    edgeq::cli::RegisterQuantize(app),
#if !defined(EDGEQ_NO_SERVE)  // EDGEQ_MINIMAL builds have no server
      edgeq::cli::RegisterServe(app),
#endif
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors: CLI11 prints help / the message; exit 1 for errors, 0 for --help.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  for (auto& c : cmds) {
    if (c.app->parsed()) return c.run();
  }
  return 1;
}
