// Calibration for quantization: run the fp32 model over calibration text and record,
// for the input of every matrix group, per-channel statistics of |x| (max and mean).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/model.h"

namespace edgeq {

struct ChannelStats {
  std::vector<float> max_abs;   // [dim]
  std::vector<double> sum_abs;  // [dim]
  std::vector<double> sum_sq;   // [dim]
  int64_t count = 0;            // tokens seen
};

// Key: (layer, name) with the names of ActivationObserver ("attn_in", "attn_out",
// "ffn_in", "ffn_mid"; layer -1 "output_in").
using ActivationStats = std::map<std::pair<int32_t, std::string>, ChannelStats>;

// Tokenizes `text`, evaluates up to `max_chunks` chunks of `n_ctx` tokens (BOS first).
Result<ActivationStats> CollectActivationStats(const Model& model, const Tokenizer& tok, const std::string& text,
                                               int32_t n_ctx, int32_t max_chunks, int32_t n_threads);

// Sum over calibration tokens of x x^T for the input of every matrix group (same keys as
// ActivationStats), upper triangle of a row-major [dim][dim] matrix: GPTQ's Hessian.
struct InputHessian {
  std::vector<double> h;
  int64_t dim = 0, count = 0;
};
using HessianStats = std::map<std::pair<int32_t, std::string>, InputHessian>;

// Evaluates the first `chunks` chunks of `n_ctx` tokens of `tokens` (BOS already in place).
Result<HessianStats> CollectInputHessians(const Model& model, const std::vector<int32_t>& tokens, int32_t n_ctx,
                                          int32_t chunks, int32_t n_threads);

}  // namespace edgeq
