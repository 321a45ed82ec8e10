// edgeq quantize: turns any loaded model into a GGUF file of edgeq's own quantized
// formats (format/eq_types.h). Steps: dense fp32 copy -> optional outlier transform
// (smoothing or block rotation, model/transforms.h) -> per-tensor format plan (fixed by
// the scheme, or chosen from measured sensitivity for "mixed-B") -> quantize -> write.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace edgeq {

struct QuantizeOptions {
  std::string scheme = "w4a8-g128";  // w8a8, w4a8-g32, w4a8-g64, w4a8-g128 (+ "a" suffix: asymmetric), w4e0m4-g32/-g64/-g128 (weight-only E0M4), mixed-B
  std::string outlier = "none";       // none | smooth | rotate
  float smooth_alpha = 0.5f;
  std::string calib_text;             // calibration text (needed by smooth and mixed)
  int32_t calib_ctx = 0;              // 0: min(model context, 256)
  int32_t calib_chunks = 16;
  bool gptq = false;                  // GPTQ error compensation for layer matrices (needs calib_text)
  double gptq_damp = 0.01;            // fraction of mean(diag H) added to the diagonal
  bool gptq_act_order = false;        // columns by decreasing H_ii, static group scales
  int32_t n_threads = 2;
  bool quiet = false;
  std::function<void(int, int, const std::string&)> progress;  // (done, total, what)
};

struct TensorReport {
  std::string name;
  std::string format;
  double bits_per_weight = 0;  // counting scales
  double rel_rmse = 0;         // ||W - Q(W)|| / ||W||
  double sensitivity = -1;     // mixed: KLD when only this tensor is quantized at 4 bits
  double hessian_loss = -1;    // GPTQ: tr(E H E^T) / tr(W H W^T), E = W - Q(W)
  double hessian_loss_rtn = -1;  // the same for round-to-nearest, for comparison
};

struct QuantizeReport {
  std::vector<TensorReport> tensors;
  double bpw = 0;        // all matrices, counting scales
  uint64_t file_bytes = 0;
  std::string plan;      // human-readable summary of choices
  int32_t gptq_matrices = 0;        // matrices quantized with GPTQ
  int32_t gptq_factorizations = 0;  // inverse-Hessian factorizations (one per shared input)
};

// Quantizes a model's matrices in memory with a fixed scheme (no outlier transform, no
// calibration): for benchmarks on random weights. The result owns its bytes and keeps
// `model` alive through shared vectors (norms are copied).
Result<std::unique_ptr<Model>> QuantizeInMemory(const Model& model, const std::string& scheme, int32_t n_threads);

Result<QuantizeReport> QuantizeModel(const Model& model, const Tokenizer& tok, const QuantizeOptions& opts,
                                     const std::string& out_path);

}  // namespace edgeq
