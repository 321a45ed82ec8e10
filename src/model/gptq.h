// GPTQ (Frantar et al., arXiv 2210.17323): quantizes a matrix one input column at a time
// and spreads each column's rounding error over the columns not yet quantized, weighted
// by the inverse Hessian H = sum over calibration tokens of x x^T of the matrix input.
// The result is an ordinary row of the target format (same scales + codes layout the
// kernels read); only the choice of codes (and of group scales, which are searched on
// the error-updated weights when a group starts) differs from round-to-nearest.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "format/tensor_types.h"

namespace edgeq {

class ThreadPool;

struct GptqOptions {
  double damp = 0.01;      // added to H's diagonal, as a fraction of its mean
  bool act_order = false;  // quantize columns by decreasing H_ii (group scales then come
                           // from the original weights: "static groups")
};

// What GPTQ needs from one input's Hessian, independent of the matrix: the column order,
// the upper Cholesky factor of the damped inverse Hessian (the O(n^3) part) and the
// per-channel importance for group scales. Matrices that share an input (q/k/v, gate/up)
// share one factor: computed once per input, not once per matrix.
struct GptqFactor {
  int64_t n = 0;
  std::vector<int64_t> perm;  // quantization order of the input channels
  std::vector<double> u;      // [n][n] upper factor of (permuted, damped H)^-1
  std::vector<float> imp;     // H_ii + damping, identity order
  bool act_order = false;
  double damp_used = 0;       // damping actually applied (raised if H was indefinite)
};
Result<GptqFactor> GptqFactorize(const std::vector<double>& h, int64_t n, const GptqOptions& opts);

// w: [rows][n] fp32; out: rows x RowBytes(type, n); f from GptqFactorize of the input's H.
// Returns the error-weighted proxy loss tr((W-Q) H (W-Q)^T) / tr(W H W^T) of the result.
Result<double> GptqQuantizeFactored(const float* w, int64_t rows, int64_t n, const std::vector<double>& h,
                                    const GptqFactor& f, GgmlType type, uint8_t* out, ThreadPool* pool);

// Both steps for one matrix (h: [n][n], only the upper triangle is read).
Result<double> GptqQuantize(const float* w, int64_t rows, int64_t n, const std::vector<double>& h, GgmlType type,
                            const GptqOptions& opts, uint8_t* out, ThreadPool* pool);

// Same loss for an already quantized matrix (for comparing with round-to-nearest).
Result<double> HessianLoss(const float* w, int64_t rows, int64_t n, const std::vector<double>& h, GgmlType type,
                           const uint8_t* q);

}  // namespace edgeq
