// ggml tensor types as data: one traits row per type (id that never changes, name,
// block size in elements, bytes per block) and an exact scalar dequantizer.
// Block layouts follow the GGUF spec; each block struct has a static_assert on its
// size in ggml_types.cc. Our own formats (dynamic quantization) are added in
// quant/ with type ids from a range ggml does not use (see docs/formats.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace edgeq {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;       // "f32", "q4_0", ... (as llama.cpp prints them)
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t type_size;     // bytes per block
  bool can_dequantize;    // we have an exact to-float for it
  // Dequantizes `n` elements (n % block_size == 0) from `src` to `dst`.
  void (*to_float)(const void* src, float* dst, int64_t n);
};

// nullptr for an id we do not know.
const GgmlTypeTraits* GetGgmlTypeTraits(uint32_t type_id);
const GgmlTypeTraits& GgmlTraits(GgmlType t);  // for known types only
const char* GgmlTypeName(GgmlType t);

// Bytes of one row of `n` elements; error if n is not a multiple of the block size
// or the type is unknown.
Result<uint64_t> GgmlRowBytes(GgmlType t, uint64_t n);

// Dequantize a row of n elements (n multiple of the block size).
Status DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n);

// Reference quantizers (round-to-nearest, llama.cpp's reference semantics) for the
// types we write: F32, F16, BF16, Q8_0, Q4_0. Used by convert and by tests.
Status QuantizeRowRef(GgmlType t, const float* src, void* dst, int64_t n);

}  // namespace edgeq
