// edgeq's own weight formats, declared as data: a block struct per family, one traits
// row per type (stable name, GGUF type id from 100..127, which ggml does not use),
// and scalar reference quantize/dequantize functions that are the specification.
// Layouts are documented in docs/formats.md.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace edgeq {

enum class EqType : uint32_t {
  kW8C = 100,      // int8 per output channel (row), symmetric, fp32 row scale
  kW4G32 = 101,    // int4 per group of 32, symmetric, fp16 scale
  kW4G64 = 102,
  kW4G128 = 103,
  kW4G32A = 104,   // int4 per group, asymmetric: fp16 scale + fp16 minimum
  kW4G64A = 105,
  kW4G128A = 106,
  // 107 was a 4-bit code book ("fp4e0m4-g32") that was not E0M4; retired, not reused.
  kE0M4G32 = 108,  // Transformer-Lite E0M4 4-bit float per group: fp16 scale + fp16 bias
  kE0M4G64 = 109,
  kE0M4G128 = 110,
};

inline bool IsE0m4(EqType t) { return t == EqType::kE0M4G32 || t == EqType::kE0M4G64 || t == EqType::kE0M4G128; }

// E0M4 (Transformer-Lite, arXiv 2403.20041): no exponent bits, four mantissa bits. A code
// c is the top four mantissa bits of a half-precision number whose exponent is fixed at
// 2^0, so it becomes an fp16 value in [1, 2) with two bit operations (shift, or):
//   fp16 bits = 0x3C00 | (c << 6)   ->   1 + c/16
// and the weight is that value times the block scale plus the block bias (one fma). The
// fp32 bits of the same number are 0x3F800000 | (c << 19) (fp16 -> fp32 is exact).
inline uint16_t E0m4ToFp16Bits(uint32_t c) { return static_cast<uint16_t>(0x3C00u | (c << 6)); }
inline uint32_t E0m4ToFp32Bits(uint32_t c) { return 0x3F800000u | (c << 19); }

struct EqTypeTraits {
  EqType type;
  const char* name;      // never changes: it is written in docs and scheme names
  int32_t group;         // elements per block (0: whole row, w8c)
  int32_t block_bytes;   // bytes per block (w8c: per-row header bytes)
  bool asymmetric;
  bool integer_kernel;   // has an integer x int8-activation kernel
};

const EqTypeTraits* GetEqTypeTraits(uint32_t id);  // nullptr if not ours
Result<uint64_t> EqRowBytes(EqType t, int64_t n);
Status QuantizeRowEq(EqType t, const float* src, void* dst, int64_t n, const float* importance);
Status DequantizeRowEq(EqType t, const void* src, float* dst, int64_t n);
// The arithmetic specification of the E0M4 formats, (1 + c/16) * s + b with no bit
// tricks (DequantizeRowEq uses the bit conversion; tests compare the two).
Status DequantizeRowE0m4Reference(EqType t, const void* src, float* dst, int64_t n);

// Re-rounds element `index` of an already quantized row `row` (encoded by QuantizeRowEq,
// whose block scales, and minimums for asymmetric types, are kept) to the value `x`:
// writes the nearest code under that element's block scale and returns the value it
// decodes to. GPTQ uses this: scales first, then codes one column at a time.
float SetRowElementEq(EqType t, void* row, int64_t index, float x);

// ---- block layouts ----
// w4 symmetric block of G elements: fp16 scale d, then G/2 bytes. Element j < G/2 is
// the low nibble of byte j, element j + G/2 the high nibble; value = (nibble - 8) * d.
// w4 asymmetric: fp16 d, fp16 m, nibbles as above; value = nibble * d + m.
// e0m4: fp16 s, fp16 b, nibbles as above; value = fp16(0x3C00 | nibble << 6) * s + b
//   = (1 + nibble/16) * s + b.
// w8c row: fp32 scale s, then n int8; value = q * s.
// A row of n elements holds ceil(n/G) blocks; the last one is zero-padded.

}  // namespace edgeq
