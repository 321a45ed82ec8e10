// Run-time activation quantization (the "A8" of W4A8/W8A8) and the integer
// matrix kernels that consume it.
//
// A quantized activation row of n values is stored as nb = ceil(n/32) blocks of 32:
// int8 q[nb*32] (zero-padded), float d[nb] (scale = max|x| / 127 of the block) and
// int32 s[nb] (sum of the block's q, for asymmetric weights and the unsigned-weight
// trick of the SIMD kernels) and float c[nb] = d * s (the same correction already in
// float, so a kernel applies it with one fma). Every quantize_act fills all four. Per-32 scales cost nothing in the kernels: every weight
// block already ends with a float multiply, and they keep one outlier from coarsening
// the whole token's quantization.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "format/eq_types.h"

namespace edgeq {

constexpr int kActBlock = 32;

struct QuantAct {
  int8_t* q = nullptr;   // [n_tok][nb*32]
  float* d = nullptr;    // [n_tok][nb]
  int32_t* s = nullptr;  // [n_tok][nb]
  float* c = nullptr;    // [n_tok][nb] d * s
  int64_t nb = 0;        // blocks per row
  const int8_t* qrow(int64_t t) const { return q + t * nb * kActBlock; }
  const float* drow(int64_t t) const { return d + t * nb; }
  const int32_t* srow(int64_t t) const { return s + t * nb; }
  const float* crow(int64_t t) const { return c + t * nb; }
};

// Non-finite activations (a poisoned model: NaN/Inf scales or weights): every quantizer
// (scalar and SIMD, all tiers) gives a NaN element the code 0 and clamps codes to
// [-lim, lim], so q and s stay in their ranges (s is at most 32 * 127 in magnitude and
// the kernels' integer arithmetic cannot overflow), and a block holding a NaN gets the
// scale NaN (an Inf makes the scale Inf): the poison reaches the output as in fp32.
inline int ActCode(float r, float lim) {
  if (r != r) return 0;
  if (r > lim) r = lim;
  if (r < -lim) r = -lim;
  return static_cast<int>(std::lrintf(r));
}
inline float ActScale(float d, bool has_nan) { return has_nan ? std::numeric_limits<float>::quiet_NaN() : d; }

// Bytes of scratch a QuantAct for n_tok rows of n values needs.
inline uint64_t QuantActBytes(int64_t n_tok, int64_t n) {
  const int64_t nb = (n + kActBlock - 1) / kActBlock;
  return static_cast<uint64_t>(n_tok) * nb * (kActBlock + 12) + 64;
}
// Lays out a QuantAct in `mem` (QuantActBytes bytes).
QuantAct MakeQuantAct(void* mem, int64_t n_tok, int64_t n);

// Re-quantizes token row t of `a` from x to 4 bits (per 32-block scale max|x|/7, values in
// [-7, 7] kept in the int8 lanes, so every kernel consumes it unchanged). The "low"
// precision of token-adaptive activation quantization.
void QuantizeActRow4(const float* x, int64_t n, QuantAct* a, int64_t t);

// Matrix kernel: for rows r in [r0, r1) of a weight matrix of type t (row_bytes each)
// and every token row of `a`: y[tok * y_stride + r] = W[r] . dequant(a[tok]).
using GemmEqFn = void (*)(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
                          const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
// Activation quantizer: rows of x ([n_tok][x_stride], n used) into a.
using QuantizeActFn = void (*)(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a);
// Fused producers (KernelTable::norm_quant_act / swiglu_quant_act).
using NormQuantActFn = void (*)(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a,
                                int64_t t);
using SwiGluQuantActFn = void (*)(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t);

}  // namespace edgeq
