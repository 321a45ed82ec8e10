// Model-agnostic operators. They know nothing of the model graph: each takes plain
// pointers with explicit sizes, and the heavy ones take the thread pool.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "format/ggml_types.h"
#include "kernels/quant_act.h"

namespace edgeq {

// A 2-D weight matrix in any ggml type: `rows` output features, each a row of `cols`
// input features stored contiguously (GGUF ne[0] == cols). Points into a mapped file
// or into storage owned by the model.
struct Tensor2D {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  // The same weights repacked for the integer kernels (kernels/packed.h), or nullptr.
  const uint8_t* packed = nullptr;
  uint64_t packed_bytes = 0;  // its size: what a product with this matrix reads
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes; }
  bool empty() const { return data == nullptr; }
};

// out[i] = w[i] * x[i] / sqrt(mean(x^2) + eps)    (x, out: [n]; may alias)
void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps);

// 1 / sqrt(mean(x^2) + eps), the scale RmsNorm applies.
float RmsScale(const float* x, int64_t n, float eps);

// Fused with the activation quantization of the next integer matmul: RmsNorm / SwiGlu of
// one token row that also quantizes the result into token row t of `a` (MakeQuantAct of
// the matmul's n_tok and n) in the same pass. The fp32 result is written as unfused and
// the int8 codes and scales are exactly those MatMul would compute from it.
void RmsNormQuant(const float* x, const float* w, float* out, int64_t n, float eps, QuantAct* a, int64_t t);
void SwiGluQuant(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t);

// In-place softmax over x[0..n).
void Softmax(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i]
void SwiGlu(float* gate, const float* up, int64_t n);

// Copies row `r` of `t` to fp32 (dequantizing).
void GetRowF32(const Tensor2D& t, int64_t r, float* out);

// Scratch memory of a MatMul, owned by the caller's arena.
struct MatMulScratch {
  float* rows = nullptr;      // per-thread dequantized weight rows: threads * max cols floats
  void* act = nullptr;        // quantized activations (kernels/quant_act.h)
  uint64_t act_bytes = 0;
  // Token-adaptive activation precision: when set, rows t with low_bits[t] != 0 are
  // quantized to 4 bits (values in [-7, 7]) instead of 8.
  const uint8_t* low_bits = nullptr;
  // `act` already holds the input quantized by RmsNormQuant / SwiGluQuant (same n_tok
  // and cols as this call): the integer path uses it instead of quantizing again.
  bool act_ready = false;
};

// Y = X W^T for n_tok tokens: x is [n_tok][x_stride] (first w.cols used), y is
// [n_tok][y_stride] (first w.rows written). Weight rows are split across threads and
// each row is read once for all tokens (the prefill GEMM shape); n_tok == 1 is the
// decode GEMV. edgeq's integer formats (w8c, w4g*) quantize the activations to int8
// per 32-block once per call and run the integer kernel; other types dequantize each
// weight row to fp32.
void MatMul(const Tensor2D& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
            int64_t y_stride, const MatMulScratch& scratch, ThreadPool& pool);

// One output of MatMulMulti: y ([n_tok][y_stride]) = X w^T.
struct MatMulOut {
  const Tensor2D* w = nullptr;
  float* y = nullptr;
  int64_t y_stride = 0;
};
// Several matrices with the same input (q/k/v, gate/up): for integer formats the
// activations are quantized once and the row groups of all outputs are shared out to
// the threads in one parallel region (one synchronisation instead of one per matrix).
// Same results as separate MatMul calls.
void MatMulMulti(const MatMulOut* outs, int n_out, const float* x, int64_t x_stride, int64_t n_tok,
                 const MatMulScratch& scratch, ThreadPool& pool);
// Whether MatMulMulti over these outputs quantizes its input to int8 (every output an
// integer-kernel format of the same width, and the scratch large enough): then the op
// before it may produce the quantized input itself (RmsNormQuant, SwiGluQuant).
bool MatMulQuantizesInput(const MatMulOut* outs, int n_out, int64_t n_tok, const MatMulScratch& scratch);

// Rotary embedding tables. inv_freq[i] for i < head_dim/2, already adjusted for
// Llama-3 / linear scaling.
struct RopeParams {
  int32_t head_dim = 0;
  bool neox = false;  // rotate (x[i], x[i+d/2]) instead of (x[2i], x[2i+1])
  std::vector<float> inv_freq;
};
// Rotates n_heads consecutive heads of `v` ([n_heads][head_dim]) to position `pos`.
void ApplyRope(const RopeParams& rp, float* v, int32_t n_heads, int32_t pos);
// RoPE of one token's query (in place) and key (k -> k_out, which may be k itself or the
// key's slot in the KV cache: the store is fused into the rotation), with the angles'
// cos/sin taken from `cs` (RopeCosSin of the token's position: cos[0..head_dim/2), then
// sin[0..head_dim/2)): a forward pass computes them once per token and every layer reuses
// them. Heads are rotated one after the other. Same values as two ApplyRope calls.
void ApplyRopeQKTable(const RopeParams& rp, const float* cs, float* q, int32_t n_q_heads, const float* k,
                      float* k_out, int32_t n_kv_heads);
// cs[i] = cos(pos * inv_freq[i]), cs[head_dim/2 + i] = sin(...), as ApplyRope computes them.
void RopeCosSin(const RopeParams& rp, int32_t pos, float* cs);
// y[i] += x[i] (the residual adds; y and x must not overlap).
void AddInto(float* __restrict y, const float* __restrict x, int64_t n);

}  // namespace edgeq
