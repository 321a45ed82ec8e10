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
  kFp4G32 = 107,   // Transformer-Lite E0M4 4-bit float per group of 32, fp16 scale
};

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

// Re-rounds element `index` of an already quantized row `row` (encoded by QuantizeRowEq,
// whose block scales, and minimums for asymmetric types, are kept) to the value `x`:
// writes the nearest code under that element's block scale and returns the value it
// decodes to. GPTQ uses this: scales first, then codes one column at a time.
float SetRowElementEq(EqType t, void* row, int64_t index, float x);

// ---- block layouts ----
// w4 symmetric block of G elements: fp16 scale d, then G/2 bytes. Element j < G/2 is
// the low nibble of byte j, element j + G/2 the high nibble; value = (nibble - 8) * d.
// w4 asymmetric: fp16 d, fp16 m, nibbles as above; value = nibble * d + m.
// fp4 (E0M4-style float): fp16 d, nibbles as above; value = kFp4Values[nibble] * d.
// w8c row: fp32 scale s, then n int8; value = q * s.
// A row of n elements holds ceil(n/G) blocks; the last one is zero-padded.

}  // namespace edgeq
