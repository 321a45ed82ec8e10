// edgeq: one binary, llama.cpp-style subcommands.
#include <cstdio>
#include <vector>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"edgeq: run LLMs on edge CPUs with dynamic quantization", "edgeq"};
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
  edgeq::cli::RejectNonFiniteFloats(&app);
  if (argc == 1) {  // bare `edgeq`: the list of subcommands, as a usage error (exit 1)
    std::fputs(app.help().c_str(), stderr);
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version: CLI11 prints them, exit 0. Usage errors (an unknown flag, a
    // value out of range) are one line in the format of every other error, exit 1.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "edgeq: error: %s (--help lists the options)\n", e.what());
    return 1;
  }
  for (auto& c : cmds) {
    if (c.app->parsed()) return c.run();
  }
  return 1;
}
