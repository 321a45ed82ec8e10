#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/eq_types.h"
#include "format/tensor_types.h"
#include "kernels/kernels.h"

namespace edgeq {

float RmsScale(const float* x, int64_t n, float eps) {
  // Accumulate in double: cheap at these sizes and removes the summation-order
  // dependence between the engine and the reference.
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
}

void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  const float scale = RmsScale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (scale * x[i]);
}

void RmsNormQuant(const float* x, const float* w, float* out, int64_t n, float eps, QuantAct* a, int64_t t) {
  Kernels().norm_quant_act(x, w, RmsScale(x, n, eps), out, n, a, t);
}

void SwiGluQuant(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t) {
  Kernels().swiglu_quant_act(gate, up, n, a, t);
}

void Softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  const float sum = Kernels().exp_sum_f32(x, n, mx);
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SwiGlu(float* gate, const float* up, int64_t n) { Kernels().swiglu_f32(gate, up, n); }

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

namespace {

bool IntegerKernelType(const Tensor2D& w) {
  const EqTypeTraits* eq = GetEqTypeTraits(static_cast<uint32_t>(w.type));
  return eq != nullptr && eq->integer_kernel;
}

// Chunks of work per thread that the dynamic split aims for: enough that a slowed thread
// leaves little tail, few enough that claiming them costs nothing.
constexpr int64_t kChunksPerThread = 8;
// The least work (multiply-adds) an integer matmul hands out per claim. stories15m-shape
// decode, 2 threads, Xeon: 2714 t/s with claims of one row group, 3091 with 128K
// (median of 5 interleaved runs; 32K 2867, 64K 3011, 256K 2846); tinyllama unchanged.
constexpr int64_t kMinClaimMacs = int64_t{1} << 17;

// The float path: each weight row dequantized once (to this thread's scratch row) and
// dotted with every token.
void MatMulFloat(const Tensor2D& w, const float* x, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride,
                 const MatMulScratch& scratch_mem, ThreadPool& pool) {
  const KernelTable& k = Kernels();
  const int64_t cols = w.cols;
  float* scratch = scratch_mem.rows;
  const int64_t chunk = std::max<int64_t>(4, w.rows / (pool.size() * kChunksPerThread));
  pool.ParallelForDynamic(w.rows, chunk, [&](int tid, int64_t r0, int64_t r1) {
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

}  // namespace

void MatMulMulti(const MatMulOut* outs, int n_out, const float* x, int64_t x_stride, int64_t n_tok,
                 const MatMulScratch& scratch_mem, ThreadPool& pool) {
  if (n_out <= 0 || n_tok <= 0) return;
  const KernelTable& k = Kernels();
  const int64_t cols = outs[0].w->cols;
  const bool integer = MatMulQuantizesInput(outs, n_out, n_tok, scratch_mem);
  if (!integer) {
    MatMulScratch own = scratch_mem;
    own.act_ready = false;
    for (int j = 0; j < n_out; ++j) {
      const MatMulOut& o = outs[j];
      if (IntegerKernelType(*o.w)) {
        MatMulMulti(&o, 1, x, x_stride, n_tok, own, pool);
      } else {
        MatMulFloat(*o.w, x, x_stride, n_tok, o.y, o.y_stride, scratch_mem, pool);
      }
    }
    return;
  }
  // Integer formats: the activations are quantized once for every output.
  QuantAct a = MakeQuantAct(scratch_mem.act, n_tok, cols);
  if (scratch_mem.act_ready) {
    // Quantized by the op that produced x (RmsNormQuant / SwiGluQuant).
  } else if (n_tok >= 16 && pool.size() > 1) {  // prefill: the rows are independent
    pool.ParallelForDynamic(n_tok, 4, [&](int, int64_t t0, int64_t t1) {
      QuantAct part = a;  // the same arrays, offset to token t0
      part.q += t0 * a.nb * kActBlock;
      part.d += t0 * a.nb;
      part.s += t0 * a.nb;
      part.c += t0 * a.nb;
      k.quantize_act(x + t0 * x_stride, x_stride, t1 - t0, cols, &part);
    });
  } else {
    k.quantize_act(x, x_stride, n_tok, cols, &a);
  }
  if (scratch_mem.low_bits != nullptr) {
    for (int64_t t = 0; t < n_tok; ++t) {
      if (scratch_mem.low_bits[t]) QuantizeActRow4(x + t * x_stride, cols, &a, t);
    }
  }
  bool packed = k.gemm_eq_packed != nullptr;
  for (int j = 0; j < n_out; ++j) packed = packed && outs[j].w->packed != nullptr;
  // Work units are row groups of all outputs, concatenated: one parallel region for
  // q/k/v or gate/up, claimed in chunks that shrink towards the end
  // (ThreadPool::ParallelForGuided), so both threads reach the op's end together.
  const int64_t unit_rows = packed ? k.pack_rows : 8;
  int64_t first[5] = {0, 0, 0, 0, 0};
  int64_t total = 0;
  int n_fused = 0;
  for (int j0 = 0; j0 < n_out; j0 += n_fused) {
    n_fused = std::min(n_out - j0, 4);
    total = 0;
    for (int j = 0; j < n_fused; ++j) {
      first[j] = total;
      total += (outs[j0 + j].w->rows + unit_rows - 1) / unit_rows;
    }
    first[n_fused] = total;
    // Claims of at most 1/kChunksPerThread of a thread's share and ~2M multiply-adds (~30
    // us; with a prefill batch one row group is already a lot of work, and the last claim
    // is what the other threads wait for), and of at least ~128K multiply-adds (~1-2 us):
    // a small model's decode ops are a few such claims or run on the caller alone.
    const int64_t unit_work = unit_rows * cols * n_tok;
    const int64_t chunk = std::clamp<int64_t>(total / (pool.size() * kChunksPerThread), 1,
                                              std::max<int64_t>(1, (int64_t{2} << 20) / unit_work));
    const int64_t min_chunk = std::max<int64_t>(1, (kMinClaimMacs + unit_work - 1) / unit_work);
    pool.ParallelForGuided(total, min_chunk, chunk, [&](int, int64_t u0, int64_t u1) {
      for (int j = 0; j < n_fused && u0 < u1; ++j) {
        const int64_t b = std::max(u0, first[j]), e = std::min(u1, first[j + 1]);
        if (b >= e) continue;
        const MatMulOut& o = outs[j0 + j];
        const EqType t = static_cast<EqType>(o.w->type);
        if (packed) {
          k.gemm_eq_packed(t, o.w->packed, o.w->rows, cols, b - first[j], e - first[j], a, n_tok, o.y, o.y_stride);
        } else {
          const int64_t r0 = (b - first[j]) * unit_rows, r1 = std::min(o.w->rows, (e - first[j]) * unit_rows);
          k.gemm_eq(t, static_cast<const uint8_t*>(o.w->data), o.w->row_bytes, r0, r1, cols, a, n_tok, o.y,
                    o.y_stride);
        }
      }
    });
  }
}

bool MatMulQuantizesInput(const MatMulOut* outs, int n_out, int64_t n_tok, const MatMulScratch& scratch) {
  if (n_out <= 0 || n_tok <= 0) return false;
  const int64_t cols = outs[0].w->cols;
  bool integer = scratch.act != nullptr && QuantActBytes(n_tok, cols) <= scratch.act_bytes;
  for (int j = 0; j < n_out && integer; ++j) integer = IntegerKernelType(*outs[j].w) && outs[j].w->cols == cols;
  return integer;
}

void MatMul(const Tensor2D& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
            int64_t y_stride, const MatMulScratch& scratch_mem, ThreadPool& pool) {
  const MatMulOut o{&w, y, y_stride};
  MatMulMulti(&o, 1, x, x_stride, n_tok, scratch_mem, pool);
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

void RopeCosSin(const RopeParams& rp, int32_t pos, float* cs) {
  const int32_t half = rp.head_dim / 2;
  for (int32_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * rp.inv_freq[i];
    cs[i] = std::cos(angle);
    cs[half + i] = std::sin(angle);
  }
}

namespace {
// One head: x -> y (may be the same), pairs (x[a(i)], x[b(i)]) rotated by angle i.
inline void RotateHead(const float* __restrict c, const float* __restrict s, const float* x, float* y, int32_t half,
                       bool neox) {
  if (neox) {
    for (int32_t i = 0; i < half; ++i) {
      const float x0 = x[i], x1 = x[i + half];
      y[i] = x0 * c[i] - x1 * s[i];
      y[i + half] = x0 * s[i] + x1 * c[i];
    }
  } else {
    for (int32_t i = 0; i < half; ++i) {
      const float x0 = x[2 * i], x1 = x[2 * i + 1];
      y[2 * i] = x0 * c[i] - x1 * s[i];
      y[2 * i + 1] = x0 * s[i] + x1 * c[i];
    }
  }
}
}  // namespace

void ApplyRopeQKTable(const RopeParams& rp, const float* cs, float* q, int32_t n_q_heads, const float* k,
                      float* k_out, int32_t n_kv_heads) {
  const int32_t hd = rp.head_dim, half = hd / 2;
  for (int32_t h = 0; h < n_q_heads; ++h) RotateHead(cs, cs + half, q + h * hd, q + h * hd, half, rp.neox);
  for (int32_t h = 0; h < n_kv_heads; ++h) RotateHead(cs, cs + half, k + h * hd, k_out + h * hd, half, rp.neox);
}

void AddInto(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace edgeq
