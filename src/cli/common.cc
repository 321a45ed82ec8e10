#include "cli/common.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace edgeq::cli {

void AddModelFlags(CLI::App* app, ModelFlags* f, bool with_runtime) {
  app->add_option("-m,--model", f->model,
                  "model: GGUF file, llama2.c .bin (with -z), or Hugging Face directory "
                  "(default: the stories260K model shipped in the repo)");
  app->add_option("-z,--tokenizer", f->tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  if (with_runtime) {
    app->add_option("-t,--threads", f->threads, "threads (default: all cores)")->check(CLI::Range(1, 256));
    app->add_option("-c,--ctx-size", f->ctx, "context size in tokens (default: the model's)")->check(CLI::Range(0, 1 << 24));
  }
  app->add_flag("-v,--verbose", f->verbose, "print details to stderr");
  app->add_flag_callback(
      "--cpu-affinity", [] { ThreadPool::SetPinThreads(true); },
      "pin each compute thread to its own CPU (of those this process may use)");
}

void AddKvFlags(CLI::App* app, KvFlags* f, bool with_shift) {
  app->add_option("--kv-type", f->type,  // bench: a comma-separated list
                  "KV-cache format: f32 (default, exact), f16, q8, q4, q2 (per-token groups of 32 with fp16 "
                  "scale+min; keys see --kv-key-layout), adaptive (sinks + recent window at q8, older tokens re-quantized to 4/2 bits)");
  app->add_option("--kv-policy", f->policy,
                  "adaptive: sink-window (aged tokens 4-bit) or squat (the least-attended half of aged tokens 2-bit)");
  app->add_option("--kv-window", f->window, "adaptive: recent tokens kept at 8 bits (default 32)")
      ->check(CLI::Range(1, 1 << 24));
  app->add_option("--kv-sinks", f->sinks, "adaptive: first tokens kept at 8 bits (default 4)")
      ->check(CLI::Range(0, 1 << 24));
  app->add_flag("--kv-rotate", f->rotate,
                "rotate q/k/v per head (Walsh-Hadamard with fixed signs) before the KV cache quantizes them");
  app->add_option("--kv-key-layout", f->key_layout,
                  "keys of q8/q4/q2/adaptive caches: token (per-token groups of 32 channels, like values) or "
                  "channel (KIVI: per channel over blocks of 32 tokens, the newest block in fp16)");
  if (with_shift) {
    app->add_flag("--ctx-shift", f->ctx_shift,
                  "when the context is full, keep the first --kv-sinks tokens and the newer half of the rest and "
                  "go on (default: stop with an error)");
  }
}

void AddSamplingFlags(CLI::App* app, SamplingFlags* f) {
  app->add_option("--temp", f->temp, "temperature; 0 = greedy")->check(CLI::Range(0.0, 100.0));
  app->add_option("-s,--seed", f->seed, "RNG seed (-1: random)");
  app->add_option("--top-k", f->top_k, "top-k (0: off)");
  app->add_option("--top-p", f->top_p, "top-p (1: off)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--min-p", f->min_p, "min-p (0: off)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--repeat-penalty", f->repeat_penalty, "repetition penalty (1: off)");
  app->add_option("--repeat-last-n", f->repeat_last_n, "penalty window (-1: all)");
  app->add_option("--frequency-penalty", f->frequency_penalty, "frequency penalty");
  app->add_option("--presence-penalty", f->presence_penalty, "presence penalty");
}

void RejectNonFiniteFloats(CLI::App* app) {
  static const CLI::Validator finite(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() && !std::isfinite(v)) return "must be a finite number, not " + text;
        return {};  // anything else is left to the conversion, which names what it wanted
      },
      "");
  for (CLI::Option* opt : app->get_options()) {
    if (opt->get_type_name().rfind("FLOAT", 0) == 0) opt->check(finite);
  }
  for (CLI::App* sub : app->get_subcommands({})) RejectNonFiniteFloats(sub);
}

SamplerParams ToSamplerParams(const SamplingFlags& f) {
  SamplerParams sp;
  sp.temperature = f.temp;
  sp.top_k = f.top_k;
  sp.top_p = f.top_p;
  sp.min_p = f.min_p;
  sp.repeat_penalty = f.repeat_penalty;
  sp.repeat_last_n = f.repeat_last_n;
  sp.frequency_penalty = f.frequency_penalty;
  sp.presence_penalty = f.presence_penalty;
  sp.seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : std::random_device{}();
  return sp;
}

Result<KvCacheOptions> ToKvOptions(const KvFlags& f) {
  KvCacheOptions o;
  RETURN_IF_ERROR(ParseKvOptions(f.type, f.policy, f.window, f.sinks, &o, f.rotate, f.key_layout));
  return o;
}

static bool FileExists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

void ApplyDefaultModel(ModelFlags* f) {
  if (!f->model.empty()) return;
  std::vector<std::string> roots;
  if (const char* env = std::getenv("EDGEQ_MODELS_DIR")) roots.push_back(env);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    std::string dir(exe);
    dir = dir.substr(0, dir.find_last_of('/'));
    roots.push_back(dir + "/../share/edgeq/models");  // installed
    roots.push_back(dir + "/../models");              // build/ inside the repo
  }
  roots.push_back(std::string(EDGEQ_SOURCE_DIR) + "/models");
  for (const auto& r : roots) {
    std::string m = r + "/stories260K/stories260K.bin";
    if (FileExists(m)) {
      f->model = m;
      if (f->tokenizer.empty()) f->tokenizer = r + "/stories260K/tok512.bin";
      return;
    }
  }
}

void LogKernelTier() {
  const KernelTable& k = Kernels();
  const char* forced = std::getenv("EDGEQ_ISA");
  std::fprintf(stderr, "edgeq: cpu: %s\nedgeq: kernels: %s tier (packed layout %s, %d-row groups)%s%s\n",
               GetCpuFeatures().Describe().c_str(), k.isa, k.pack_layout, k.pack_rows,
               forced != nullptr ? ", EDGEQ_ISA=" : "", forced != nullptr ? forced : "");
}

Result<Loaded> LoadModelAndTokenizer(const ModelFlags& f) {
  if (f.verbose) LogKernelTier();
  auto t0 = std::chrono::steady_clock::now();
  Loaded out;
  LoadOptions lo;
  lo.model_path = f.model;
  lo.tokenizer_path = f.tokenizer;
  if (lo.model_path.empty()) return InvalidArgument("no model given (-m) and the default model was not found");
  ASSIGN_OR_RETURN(out.model, LoadModel(lo));
  ASSIGN_OR_RETURN(out.tokenizer, Tokenizer::Create(out.model->tokenizer_data));
  if (out.tokenizer->vocab_size() != out.model->config.vocab_size) {
    // Models may pad the embedding past the vocabulary; the reverse is an error.
    if (out.tokenizer->vocab_size() > out.model->config.vocab_size) {
      return DataLoss("tokenizer has " + std::to_string(out.tokenizer->vocab_size()) +
                      " tokens but the model's embedding has only " +
                      std::to_string(out.model->config.vocab_size) + " rows");
    }
  }
  out.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "edgeq: error: %s\n", message.c_str());
  return 1;
}

int Fail(const Status& st) { return Fail(st.message()); }

}  // namespace edgeq::cli
