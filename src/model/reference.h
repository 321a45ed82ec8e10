// The scalar reference forward pass: the oracle the optimized engine is tested
// against. One token at a time, plain loops, dense fp32 copies of every weight,
// sequential float sums (llama2.c's run.c structure). Slow and obvious on purpose.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace edgeq {

class ReferenceForward {
 public:
  static Result<ReferenceForward> Create(const Model& model, int32_t n_ctx);
  // Feeds `token` at position `pos` (positions must come in order from 0) and
  // returns the logits [vocab].
  Result<std::vector<float>> Step(int32_t token, int32_t pos);

 private:
  struct Layer {
    std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w1, w2, w3;
  };
  ModelConfig c_;
  std::vector<float> freq_factors_;
  int32_t n_ctx_ = 0;
  std::vector<float> embd_;        // [vocab][dim]
  std::vector<Layer> layers_;
  std::vector<float> out_norm_;    // [dim]
  std::vector<float> out_;         // [vocab][dim]
  std::vector<float> key_cache_;   // [layer][n_ctx][kv_dim]
  std::vector<float> value_cache_; // [layer][n_ctx][kv_dim]
};

}  // namespace edgeq
