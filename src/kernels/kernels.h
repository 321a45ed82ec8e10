// Kernel table: the inner loops the ops call, chosen once at start-up for this CPU.
// kernels/generic/ is the scalar reference and is always built; ISA folders fill
// the same table with faster versions (dispatch.cc picks them).
#pragma once

#include <cstdint>

#include "format/ggml_types.h"
#include "kernels/kv.h"
#include "kernels/packed.h"
#include "kernels/quant_act.h"

namespace edgeq {

struct KernelTable {
  const char* isa = "generic";
  // sum_i a[i]*b[i]
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  // fp16 -> fp32 conversion of n values (F16 weights).
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n) = nullptr;
  // gate[i] = silu(gate[i]) * up[i]
  void (*swiglu_f32)(float* gate, const float* up, int64_t n) = nullptr;
  // x[i] = exp(x[i] - sub); returns the sum (softmax).
  float (*exp_sum_f32)(float* x, int64_t n, float sub) = nullptr;
  // max_i x[i] (n >= 1), and x[i] *= s: an online softmax's running max and rescaling.
  float (*max_f32)(const float* x, int64_t n) = nullptr;
  void (*scale_f32)(float* x, int64_t n, float s) = nullptr;
  // Dynamic activation quantization and the integer W4/W8 x A8 matrix kernel.
  QuantizeActFn quantize_act = nullptr;
  GemmEqFn gemm_eq = nullptr;
  // Fused producers of an integer matmul's input, one pass over the row: they write the
  // fp32 values and quantize them into token row t of `a` (MakeQuantAct over the same
  // n_tok and n), with exactly the codes and scales quantize_act gives for those values.
  //   norm:   out[i] = w[i] * (scale * x[i])        (RMSNorm, scale already computed)
  //   swiglu: gate[i] = silu(gate[i]) * up[i]       (exactly as swiglu_f32)
  NormQuantActFn norm_quant_act = nullptr;
  SwiGluQuantActFn swiglu_quant_act = nullptr;
  // The same product over weights repacked at load into this tier's layout (pack_eq,
  // packed_eq_bytes; kernels/packed.h): the fast path. Row groups of pack_rows rows.
  GemmEqPackedFn gemm_eq_packed = nullptr;
  PackEqFn pack_eq = nullptr;
  PackedEqBytesFn packed_eq_bytes = nullptr;
  int32_t pack_rows = kPackRows;
  // Attention over the KV-cache formats (kernels/kv.h): q.k scores and the p-weighted
  // sum of values, read straight from the stored rows.
  KvScoresFn kv_scores = nullptr;
  KvAccumFn kv_accum = nullptr;
  const char* pack_layout = "rows8";
};

// The table of one tier ("generic", "avx2", "avx512vnni"); nullptr when this CPU (or
// this build) lacks it. For tests and benchmarks that compare tiers.
const KernelTable* KernelsForTier(const char* tier);

// The table for this CPU (detected once; EDGEQ_ISA forces a lower tier).
const KernelTable& Kernels();

namespace generic {
float DotF32(const float* a, const float* b, int64_t n);
void AxpyF32(float a, const float* x, float* y, int64_t n);
void F16ToF32(const uint16_t* src, float* dst, int64_t n);
void SwiGluF32(float* gate, const float* up, int64_t n);
float ExpSumF32(float* x, int64_t n, float sub);
float MaxF32(const float* x, int64_t n);
void ScaleF32(float* x, int64_t n, float s);
void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a);
// Block b of token row t of `a` from v[0..valid) (the rest zero): the reference rounding.
void QuantizeActBlock(const float* v, int64_t valid, QuantAct* a, int64_t t, int64_t b);
void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t);
void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t);
void GemmEq(EqType type, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
            const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
// The generic rows8 layout (kernels/packed.h) as table entries.
void PackEqRows8(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out);
uint64_t PackedEqBytesRows8(EqType t, int64_t rows, int64_t cols);
}  // namespace generic

}  // namespace edgeq
