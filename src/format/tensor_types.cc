#include "format/tensor_types.h"

#include <cstring>

#include "format/eq_types.h"

namespace edgeq {

bool IsEqType(GgmlType t) { return GetEqTypeTraits(static_cast<uint32_t>(t)) != nullptr; }

bool IsKnownType(uint32_t id) { return GetGgmlTypeTraits(id) != nullptr || GetEqTypeTraits(id) != nullptr; }

const char* TypeName(GgmlType t) {
  if (const EqTypeTraits* e = GetEqTypeTraits(static_cast<uint32_t>(t))) return e->name;
  return GgmlTypeName(t);
}

Result<GgmlType> TypeByName(const std::string& name) {
  for (uint32_t id = 0; id < 256; ++id) {
    if (const EqTypeTraits* e = GetEqTypeTraits(id); e != nullptr && name == e->name) return static_cast<GgmlType>(id);
    if (const GgmlTypeTraits* g = GetGgmlTypeTraits(id); g != nullptr && name == g->name) return g->type;
  }
  return InvalidArgument("unknown tensor type '" + name + "'");
}

Result<uint64_t> RowBytes(GgmlType t, int64_t n) {
  if (n < 0) return InvalidArgument("negative row length");
  if (IsEqType(t)) return EqRowBytes(static_cast<EqType>(t), n);
  return GgmlRowBytes(t, static_cast<uint64_t>(n));
}

double BitsPerWeight(GgmlType t, int64_t n) {
  auto rb = RowBytes(t, n);
  return rb.ok() && n > 0 ? 8.0 * static_cast<double>(*rb) / static_cast<double>(n) : 0.0;
}

Status DecodeRow(GgmlType t, const void* src, float* dst, int64_t n) {
  if (IsEqType(t)) return DequantizeRowEq(static_cast<EqType>(t), src, dst, n);
  return DequantizeRow(t, src, dst, n);
}

Status EncodeRow(GgmlType t, const float* src, void* dst, int64_t n, const float* importance) {
  if (IsEqType(t)) return QuantizeRowEq(static_cast<EqType>(t), src, dst, n, importance);
  return QuantizeRowRef(t, src, dst, n);
}

}  // namespace edgeq
