// Perplexity and KL divergence, computed the way llama-perplexity does: the text is
// tokenized once (with BOS), cut into non-overlapping chunks of n_ctx tokens, the
// first token of each chunk is replaced by BOS (when the model adds one), and only
// the second half of each chunk is scored (every scored token has at least n_ctx/2
// tokens of context).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/session.h"

namespace edgeq {

struct PerplexityOptions {
  int32_t n_ctx = 0;      // chunk size; 0: the model's context
  int32_t max_chunks = -1;
  int32_t n_threads = 0;
  int32_t batch = 64;
  bool adaptive_act_bits = false;  // for the evaluated model (never the base)
  KvCacheOptions kv;               // KV format of the evaluated model (the base always uses fp32 KV)
};

struct PerplexityResult {
  double ppl = 0;
  double nll_mean = 0;
  int64_t tokens_scored = 0;
  int32_t chunks = 0;
  int32_t n_ctx = 0;
  // With a base model:
  bool has_kl = false;
  double kld_mean = 0;
  double kld_p99 = 0;
  double kld_max = 0;
  double top1_agree = 0;  // fraction in [0, 1]
  double base_ppl = 0;
  double low_bit_fraction = 0;  // with adaptive_act_bits
  uint64_t kv_bytes = 0;          // the evaluated session's KV cache (n_ctx positions)
  double kv_bytes_per_token = 0;  // kv_bytes / n_ctx (all layers, keys and values)
  // Tokens x layers stored at 2 / 4 / 8+ bits when the last chunk ended (adaptive KV).
  int64_t kv_precision[3] = {0, 0, 0};
};

// `base` may be null (no KL); it may be `&model` (KL of a KV format against fp32 KV). progress(done, total) is called after each chunk.
Result<PerplexityResult> ComputePerplexity(const Model& model, const Tokenizer& tok, const Model* base,
                                           const std::string& text, const PerplexityOptions& opts,
                                           const std::function<void(int, int)>& progress);

}  // namespace edgeq
