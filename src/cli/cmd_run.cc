// edgeq run: generate text from a prompt; text to stdout, stats to stderr.
#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "core/cpu_features.h"
#include "kernels/kernels.h"
#include "runtime/session.h"

namespace edgeq::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  std::string prompt;
  std::string prompt_file;
  int32_t n_predict = -1;
  SamplingFlags sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool no_special = false;
  int32_t batch = 64;
  bool adaptive_act = false;
  KvFlags kv;
};

int Run(RunFlags& f) {
  ApplyDefaultModel(&f.model);
  if (!f.prompt_file.empty()) {
    auto text = ReadFileToString(f.prompt_file);
    if (!text.ok()) return Fail(text.status());
    f.prompt = *text;
  }
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  Model& model = *loaded->model;
  Tokenizer& tok = *loaded->tokenizer;

  std::vector<int32_t> prompt = tok.Encode(f.prompt, /*add_special=*/true, /*parse_special=*/!f.no_special);
  if (prompt.empty()) {
    if (tok.bos() < 0) return Fail("empty prompt, and the model has no BOS token to start from: give -p");
    prompt.push_back(tok.bos());
  }
  SessionOptions so;
  so.n_ctx = f.model.ctx;
  so.n_threads = f.model.threads;
  so.batch = f.batch;
  so.adaptive_act_bits = f.adaptive_act;
  auto kv = ToKvOptions(f.kv);
  if (!kv.ok()) return Fail(kv.status());
  so.kv = *kv;
  so.ctx_shift = f.kv.ctx_shift;
  auto session = Session::Create(model, tok, so);
  if (!session.ok()) return Fail(session.status());
  if (static_cast<int64_t>(prompt.size()) > (*session)->n_ctx()) {
    return Fail("prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context (" +
                std::to_string((*session)->n_ctx()) + " tokens); use -c to raise it (model maximum " +
                std::to_string(model.config.context_length) + ")");
  }

  GenerateOptions go;
  go.n_predict = f.n_predict;
  go.stop = f.stop;
  go.ignore_eos = f.ignore_eos;
  go.sampler = ToSamplerParams(f.sampling);
  const SamplerParams& sp = go.sampler;
  if (f.model.verbose) {
    std::fprintf(stderr, "edgeq: model %s (%s, %s), %d threads, ctx %d, seed %llu\n", model.path.c_str(),
                 model.config.arch.c_str(), model.format.c_str(), (*session)->pool().size(),
                 (*session)->n_ctx(), static_cast<unsigned long long>(sp.seed));
  }

  GenerateStats stats;
  Status st = (*session)->Generate(prompt, go, [](const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  }, &stats);
  if (!st.ok()) return Fail(st);
  std::fprintf(stderr, "\n\nedgeq: load %.1f ms | prompt %d tokens, %.1f ms, %.2f tok/s | generated %d tokens, %.1f ms, %.2f tok/s | stop: %s\n",
               loaded->load_ms, stats.n_prompt, stats.prompt_ms,
               stats.prompt_ms > 0 ? stats.n_prompt * 1000.0 / stats.prompt_ms : 0.0, stats.n_generated,
               stats.gen_ms, stats.gen_ms > 0 ? stats.n_generated * 1000.0 / stats.gen_ms : 0.0,
               stats.stop_reason.c_str());
  return 0;
}

}  // namespace

Command RegisterRun(CLI::App& root) {
  static RunFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("run", "generate text from a prompt (stdout: text only; stderr: stats)");
  AddModelFlags(app, &f->model, true);
  app->add_option("-p,--prompt", f->prompt, "prompt text (default: empty, i.e. start from BOS)");
  app->add_option("-f,--file", f->prompt_file, "read the prompt from a file");
  app->add_option("-n,--n-predict", f->n_predict, "tokens to generate (-1: until EOS or context full)");
  AddSamplingFlags(app, &f->sampling);
  app->add_option("--stop", f->stop, "stop string (repeatable)");
  app->add_flag("--ignore-eos", f->ignore_eos, "keep generating past EOS");
  app->add_flag("--no-special", f->no_special, "treat special-token text in the prompt as plain text");
  app->add_option("-b,--batch-size", f->batch, "prefill chunk size")->check(CLI::Range(1, 1 << 16));
  app->add_flag("--adaptive-act", f->adaptive_act, "token-adaptive 4/8-bit activations (integer-kernel formats)");
  AddKvFlags(app, &f->kv, true);
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
