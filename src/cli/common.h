// Shared pieces of the CLI subcommands: model flags, loading with one-line errors,
// the default model shipped in the repo.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "model/model.h"
#include "ops/kv_cache.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace edgeq::cli {

struct ModelFlags {
  std::string model;      // -m
  std::string tokenizer;  // -z
  int32_t threads = 0;    // -t
  int32_t ctx = 0;        // -c
  bool verbose = false;   // -v
};

void AddModelFlags(CLI::App* app, ModelFlags* f, bool with_runtime);

// KV-cache format flags (run, chat, perplexity, bench, serve): --kv-type, --kv-policy,
// --kv-window, --kv-sinks, and with with_shift --ctx-shift.
struct KvFlags {
  std::string type = "f32";
  std::string policy = "sink-window";
  int32_t window = 32;
  int32_t sinks = 4;
  bool ctx_shift = false;
  bool rotate = false;
  std::string key_layout = "token";  // --kv-key-layout token|channel
};
void AddKvFlags(CLI::App* app, KvFlags* f, bool with_shift);
Result<KvCacheOptions> ToKvOptions(const KvFlags& f);

// Sampling flags (run, chat): --temp, -s/--seed, --top-k, --top-p, --min-p and the
// penalties, with one set of defaults and range checks. The server takes the same knobs
// per request instead (server/api.cc).
struct SamplingFlags {
  float temp = 0.8f;
  int64_t seed = -1;  // -1: random
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
};
void AddSamplingFlags(CLI::App* app, SamplingFlags* f);
// The sampler parameters the flags ask for; a seed of -1 becomes a random one.
SamplerParams ToSamplerParams(const SamplingFlags& f);

// The model that ships with the repo (stories260K), resolved next to the binary or
// the source tree; fills model+tokenizer when -m was not given.
void ApplyDefaultModel(ModelFlags* f);

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_ms = 0;
};
Result<Loaded> LoadModelAndTokenizer(const ModelFlags& f);

// Gives every floating-point option of app and its subcommands a check that the value is
// finite: CLI11's Range lets "nan" through (every comparison with NaN is false), and a NaN
// temperature, timeout or bits-per-weight target would run on with meaningless results.
void RejectNonFiniteFloats(CLI::App* app);

// Prints "edgeq: error: <message>" to stderr and returns 1.
int Fail(const Status& st);
// With -v: the detected CPU features and the kernel tier chosen for them (stderr).
void LogKernelTier();
int Fail(const std::string& message);

// Subcommands: each registers itself and returns its runner.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};
Command RegisterRun(CLI::App& root);
Command RegisterChat(CLI::App& root);
Command RegisterTokenize(CLI::App& root);
Command RegisterInfo(CLI::App& root);
Command RegisterPerplexity(CLI::App& root);
Command RegisterConvert(CLI::App& root);
Command RegisterBench(CLI::App& root);
Command RegisterQuantize(CLI::App& root);
Command RegisterServe(CLI::App& root);

}  // namespace edgeq::cli
