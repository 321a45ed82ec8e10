#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/eq_types.h"
#include "format/tensor_types.h"
#include "kernels/kernels.h"

namespace edgeq {

void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  // Accumulate in double: cheap at these sizes and removes the summation-order
  // dependence between the engine and the reference.
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (scale * x[i]);
}

void Softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SwiGlu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void GetRowF32(const Tensor2D& t, int64_t r, float* out) {
  if (t.type == GgmlType::kF32) {
    std::memcpy(out, t.row(r), sizeof(float) * t.cols);
    return;
  }
  if (t.type == GgmlType::kF16) {
    Kernels().f16_to_f32(reinterpret_cast<const uint16_t*>(t.row(r)), out, t.cols);
    return;
  }
  // Types are validated at load; a failure here is a programmer error.
  (void)DecodeRow(t.type, t.row(r), out, t.cols);
}

void MatMul(const Tensor2D& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
            int64_t y_stride, const MatMulScratch& scratch_mem, ThreadPool& pool) {
  const KernelTable& k = Kernels();
  const int64_t cols = w.cols;
  const EqTypeTraits* eq = GetEqTypeTraits(static_cast<uint32_t>(w.type));
  if (eq != nullptr && eq->integer_kernel && scratch_mem.act != nullptr &&
      QuantActBytes(n_tok, cols) <= scratch_mem.act_bytes) {
    QuantAct a = MakeQuantAct(scratch_mem.act, n_tok, cols);
    k.quantize_act(x, x_stride, n_tok, cols, &a);
    if (scratch_mem.low_bits != nullptr) {
      for (int64_t t = 0; t < n_tok; ++t) {
        if (scratch_mem.low_bits[t]) QuantizeActRow4(x + t * x_stride, cols, &a, t);
      }
    }
    if (w.packed != nullptr && k.gemm_eq_packed != nullptr) {
      const int64_t groups = (w.rows + kPackRows - 1) / kPackRows;
      pool.ParallelFor(groups, 2, [&](int, int64_t g0, int64_t g1) {
        k.gemm_eq_packed(static_cast<EqType>(w.type), w.packed, w.rows, cols, g0, g1, a, n_tok, y, y_stride);
      });
      return;
    }
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    pool.ParallelFor(w.rows, 16, [&](int, int64_t r0, int64_t r1) {
      k.gemm_eq(static_cast<EqType>(w.type), base, w.row_bytes, r0, r1, cols, a, n_tok, y, y_stride);
    });
    return;
  }
  float* scratch = scratch_mem.rows;
  // Grain of 16 rows keeps chunks cache-line friendly for y and balances 2-8 threads.
  pool.ParallelFor(w.rows, 16, [&](int tid, int64_t r0, int64_t r1) {
    float* buf = scratch + static_cast<int64_t>(tid) * cols;  // this thread's row
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr;
      if (w.type == GgmlType::kF32) {
        wr = reinterpret_cast<const float*>(w.row(r));
      } else {
        if (w.type == GgmlType::kF16) k.f16_to_f32(reinterpret_cast<const uint16_t*>(w.row(r)), buf, cols);
        else (void)DecodeRow(w.type, w.row(r), buf, cols);
        wr = buf;
      }
      for (int64_t t = 0; t < n_tok; ++t) y[t * y_stride + r] = k.dot_f32(wr, x + t * x_stride, cols);
    }
  });
}

void ApplyRope(const RopeParams& rp, float* v, int32_t n_heads, int32_t pos) {
  const int32_t hd = rp.head_dim;
  const int32_t half = hd / 2;
  for (int32_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * rp.inv_freq[i];
    const float c = std::cos(angle);
    const float s = std::sin(angle);
    for (int32_t h = 0; h < n_heads; ++h) {
      float* x = v + static_cast<int64_t>(h) * hd;
      const int32_t a = rp.neox ? i : 2 * i;
      const int32_t b = rp.neox ? i + half : 2 * i + 1;
      const float x0 = x[a];
      const float x1 = x[b];
      x[a] = x0 * c - x1 * s;
      x[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace edgeq
