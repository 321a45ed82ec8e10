// Token sampling: repetition/frequency/presence penalties, top-k, top-p, min-p,
// temperature, then a draw from a seeded generator. temp <= 0 is greedy (argmax).
// Deterministic for a given seed on every platform (own float conversion of a
// mt19937_64 draw; no std:: distributions, whose output is implementation-defined).
// All buffers are allocated in the constructor: Sample() does not allocate.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace edgeq {

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off (llama.cpp semantics: divide positive logits)
  int32_t repeat_last_n = 64;  // window for all penalties; -1 = whole history
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerParams& p, int32_t vocab_size);
  // `logits` is modified in place. `history`: tokens so far (prompt + generated).
  int32_t Sample(float* logits, const int32_t* history, int64_t n_history);
  const SamplerParams& params() const { return p_; }

 private:
  double NextUniform();  // [0, 1)

  SamplerParams p_;
  int32_t vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;     // candidate ids
  std::vector<float> prob_;      // candidate probabilities
  std::vector<int32_t> counts_;  // per-token counts in the penalty window
};

int32_t ArgMax(const float* x, int64_t n);

}  // namespace edgeq
