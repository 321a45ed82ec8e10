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

// w: [rows][n] fp32; h: [n][n] (only the upper triangle is read); out: rows x RowBytes(type, n).
// Returns the error-weighted proxy loss tr((W-Q) H (W-Q)^T) / tr(W H W^T) of the result.
Result<double> GptqQuantize(const float* w, int64_t rows, int64_t n, const std::vector<double>& h, GgmlType type,
                            const GptqOptions& opts, uint8_t* out, ThreadPool* pool);

// Same loss for an already quantized matrix (for comparing with round-to-nearest).
Result<double> HessianLoss(const float* w, int64_t rows, int64_t n, const std::vector<double>& h, GgmlType type,
                           const uint8_t* q);

}  // namespace edgeq
