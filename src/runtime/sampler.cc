#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edgeq {

int32_t ArgMax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerParams& p, int32_t vocab_size)
    : p_(p), vocab_(vocab_size), rng_(p.seed), idx_(vocab_size), prob_(vocab_size), counts_(vocab_size, 0) {}

double Sampler::NextUniform() { return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0); }

int32_t Sampler::Sample(float* logits, const int32_t* history, int64_t n_history) {
  // Penalties over the last repeat_last_n tokens.
  const bool penalize = p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f;
  if (penalize && n_history > 0) {
    const int64_t window = p_.repeat_last_n < 0 ? n_history : std::min<int64_t>(n_history, p_.repeat_last_n);
    const int32_t* h = history + (n_history - window);
    for (int64_t i = 0; i < window; ++i) {
      if (h[i] >= 0 && h[i] < vocab_) ++counts_[h[i]];
    }
    for (int64_t i = 0; i < window; ++i) {
      const int32_t t = h[i];
      if (t < 0 || t >= vocab_ || counts_[t] == 0) continue;
      float& l = logits[t];
      if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= static_cast<float>(counts_[t]) * p_.frequency_penalty + p_.presence_penalty;
      counts_[t] = 0;  // apply once per distinct token; also resets for the next call
    }
  }
  if (p_.temperature <= 0.0f) return ArgMax(logits, vocab_);

  // Candidates sorted by logit (top-k first when active: partial sort is cheaper).
  int32_t n = vocab_;
  std::iota(idx_.begin(), idx_.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (p_.top_k > 0 && p_.top_k < n) {
    std::partial_sort(idx_.begin(), idx_.begin() + p_.top_k, idx_.end(), by_logit);
    n = p_.top_k;
  } else {
    std::sort(idx_.begin(), idx_.end(), by_logit);
  }
  // Softmax of the (unscaled) logits for top-p / min-p, as llama.cpp's chain does.
  const float mx = logits[idx_[0]];
  double sum = 0;
  for (int32_t i = 0; i < n; ++i) {
    prob_[i] = std::exp(logits[idx_[i]] - mx);
    sum += prob_[i];
  }
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (int32_t i = 0; i < n; ++i) {
      cum += prob_[i] / sum;
      if (cum >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.0f) {
    const float threshold = p_.min_p * prob_[0];  // prob_[0] is the max (unnormalized)
    int32_t keep = 1;
    while (keep < n && prob_[keep] >= threshold) ++keep;
    n = keep;
  }
  // Temperature, then draw.
  double total = 0;
  for (int32_t i = 0; i < n; ++i) {
    prob_[i] = static_cast<float>(std::exp((logits[idx_[i]] - mx) / p_.temperature));
    total += prob_[i];
  }
  const double r = NextUniform() * total;
  double cum = 0;
  for (int32_t i = 0; i < n; ++i) {
    cum += prob_[i];
    if (r < cum) return idx_[i];
  }
  return idx_[n - 1];
}

}  // namespace edgeq
