// One API over every tensor type edgeq knows: ggml's (format/ggml_types.h) and
// edgeq's own quantized formats (format/eq_types.h, ids 100..127). Loaders, the GGUF
// reader/writer, ops and the quantizer use these, so a new format needs no changes
// outside its own file.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "format/ggml_types.h"

namespace edgeq {

bool IsKnownType(uint32_t id);
bool IsEqType(GgmlType t);
const char* TypeName(GgmlType t);
Result<GgmlType> TypeByName(const std::string& name);
// Bytes of a row of n elements. ggml types need n to be a multiple of their block;
// edgeq types store a partial last group.
Result<uint64_t> RowBytes(GgmlType t, int64_t n);
double BitsPerWeight(GgmlType t, int64_t n);  // row of n, counting scales
Status DecodeRow(GgmlType t, const void* src, float* dst, int64_t n);
// Quantizes (or converts) one row; `importance` (nullable, [n]) weights the error.
Status EncodeRow(GgmlType t, const float* src, void* dst, int64_t n, const float* importance = nullptr);

}  // namespace edgeq
