#include "format/eq_types.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"

namespace edgeq {
namespace {

constexpr EqTypeTraits kEqTraits[] = {
    {EqType::kW8C, "w8c", 0, 4, false, true},
    {EqType::kW4G32, "w4g32", 32, 2 + 16, false, true},
    {EqType::kW4G64, "w4g64", 64, 2 + 32, false, true},
    {EqType::kW4G128, "w4g128", 128, 2 + 64, false, true},
    {EqType::kW4G32A, "w4g32a", 32, 4 + 16, true, true},
    {EqType::kW4G64A, "w4g64a", 64, 4 + 32, true, true},
    {EqType::kW4G128A, "w4g128a", 128, 4 + 64, true, true},
    // E0M4: the asymmetric block layout (fp16 s, fp16 m, nibbles); weight-only path.
    {EqType::kE0M4G32, "e0m4g32", 32, 4 + 16, true, false},
    {EqType::kE0M4G64, "e0m4g64", 64, 4 + 32, true, false},
    {EqType::kE0M4G128, "e0m4g128", 128, 4 + 64, true, false},
};

inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// E0M4 code nearest to x under block scale s and minimum m: values (1 + c/16) s + (m - s).
int NearestE0m4Code(float x, float s, float m) {
  if (!(s > 0)) return 0;
  const float step = s * (1.0f / 16.0f);
  return std::clamp(static_cast<int>(std::lround((x - m) / step)), 0, 15);
}

// Weighted squared error of quantizing x[0..g) with scale d (symmetric, q in [-8, 7]).
double SymError(const float* x, const float* w, int g, float d) {
  if (d == 0) {
    double e = 0;
    for (int i = 0; i < g; ++i) e += (w ? w[i] : 1.0) * x[i] * x[i];
    return e;
  }
  const float id = 1.0f / d;
  double e = 0;
  for (int i = 0; i < g; ++i) {
    const int q = std::clamp(static_cast<int>(std::lround(x[i] * id)), -8, 7);
    const double diff = x[i] - q * d;
    e += (w ? w[i] : 1.0) * diff * diff;
  }
  return e;
}

void QuantSymBlock(const float* x, const float* w, int g, int n_valid, uint8_t* out) {
  float tmp[128] = {0};
  float imp[128] = {0};
  std::memcpy(tmp, x, sizeof(float) * n_valid);
  for (int i = 0; i < g; ++i) imp[i] = i < n_valid ? (w ? w[i] : 1.0f) : 0.0f;
  // Signed max (like Q4_0): the largest-magnitude value maps to -8 exactly; then a grid
  // search over the scale picks the one with the least weighted squared error.
  float amax = 0, vmax = 0;
  for (int i = 0; i < g; ++i) {
    if (std::fabs(tmp[i]) > amax) {
      amax = std::fabs(tmp[i]);
      vmax = tmp[i];
    }
  }
  float best_d = vmax / -8.0f;
  double best_e = SymError(tmp, imp, g, best_d);
  for (int k = -6; k <= 12; ++k) {
    if (amax == 0) break;
    const float d = amax / (7.0f + 0.125f * k);
    for (float dd : {d, -d}) {
      const double e = SymError(tmp, imp, g, dd);
      if (e < best_e) {
        best_e = e;
        best_d = dd;
      }
    }
  }
  const uint16_t dh = Fp32ToFp16(best_d);
  const float d = Fp16ToFp32(dh);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  std::memcpy(out, &dh, 2);
  uint8_t* qs = out + 2;
  for (int j = 0; j < g / 2; ++j) {
    const int q0 = std::clamp(static_cast<int>(std::lround(tmp[j] * id)), -8, 7) + 8;
    const int q1 = std::clamp(static_cast<int>(std::lround(tmp[j + g / 2] * id)), -8, 7) + 8;
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void QuantAsymBlock(const float* x, const float* w, int g, int n_valid, uint8_t* out) {
  float tmp[128] = {0};
  std::memcpy(tmp, x, sizeof(float) * n_valid);
  float lo = tmp[0], hi = tmp[0];
  for (int i = 0; i < n_valid; ++i) {
    lo = std::min(lo, tmp[i]);
    hi = std::max(hi, tmp[i]);
  }
  float best_d = (hi - lo) / 15.0f, best_m = lo;
  double best_e = 1e300;
  for (int a = 0; a <= 4; ++a) {    // shrink the range from below and above
    for (int b = 0; b <= 4; ++b) {
      const float m = lo + (hi - lo) * 0.02f * a;
      const float top = hi - (hi - lo) * 0.02f * b;
      const float d = (top - m) / 15.0f;
      double e = 0;
      for (int i = 0; i < n_valid; ++i) {
        const int q = d > 0 ? std::clamp(static_cast<int>(std::lround((tmp[i] - m) / d)), 0, 15) : 0;
        const double diff = tmp[i] - (q * d + m);
        e += (w ? w[i] : 1.0) * diff * diff;
      }
      if (e < best_e) {
        best_e = e;
        best_d = d;
        best_m = m;
      }
    }
  }
  const uint16_t dh = Fp32ToFp16(best_d), mh = Fp32ToFp16(best_m);
  const float d = Fp16ToFp32(dh), m = Fp16ToFp32(mh);
  const float id = d > 0 ? 1.0f / d : 0.0f;
  std::memcpy(out, &dh, 2);
  std::memcpy(out + 2, &mh, 2);
  uint8_t* qs = out + 4;
  for (int j = 0; j < g / 2; ++j) {
    const int q0 = std::clamp(static_cast<int>(std::lround((tmp[j] - m) * id)), 0, 15);
    const int q1 = std::clamp(static_cast<int>(std::lround((tmp[j + g / 2] - m) * id)), 0, 15);
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// E0M4 block: the least-squares min/max search of the asymmetric int4 quantizer (the
// 16 E0M4 values of a block are evenly spaced too: s/16 apart from m), then the scale
// stored as s = 16 * step and the codes rounded again under the stored s and m.
void QuantE0m4Block(const float* x, const float* w, int g, int n_valid, uint8_t* out) {
  QuantAsymBlock(x, w, g, n_valid, out);
  uint16_t dh, mh;
  std::memcpy(&dh, out, 2);
  std::memcpy(&mh, out + 2, 2);
  const uint16_t sh = Fp32ToFp16(16.0f * Fp16ToFp32(dh));
  std::memcpy(out, &sh, 2);
  const float s = Fp16ToFp32(sh), m = Fp16ToFp32(mh);
  float tmp[128] = {0};
  std::memcpy(tmp, x, sizeof(float) * n_valid);
  uint8_t* qs = out + 4;
  for (int j = 0; j < g / 2; ++j) {
    qs[j] = static_cast<uint8_t>(NearestE0m4Code(tmp[j], s, m) | (NearestE0m4Code(tmp[j + g / 2], s, m) << 4));
  }
}

}  // namespace

const EqTypeTraits* GetEqTypeTraits(uint32_t id) {
  for (const auto& t : kEqTraits) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

Result<uint64_t> EqRowBytes(EqType t, int64_t n) {
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  if (tr == nullptr) return InvalidArgument("not an edgeq type");
  if (n <= 0 || n > (int64_t{1} << 32)) return InvalidArgument("row length " + std::to_string(n) + " out of range");
  if (tr->group == 0) return static_cast<uint64_t>(tr->block_bytes + n);
  return static_cast<uint64_t>((n + tr->group - 1) / tr->group) * tr->block_bytes;
}

Status QuantizeRowEq(EqType t, const float* src, void* dst, int64_t n, const float* importance) {
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  if (tr == nullptr) return InvalidArgument("not an edgeq type");
  uint8_t* out = static_cast<uint8_t*>(dst);
  if (tr->group == 0) {  // w8c
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(src[i]));
    const float s = amax / 127.0f;
    const float is = s > 0 ? 1.0f / s : 0.0f;
    std::memcpy(out, &s, 4);
    for (int64_t i = 0; i < n; ++i) out[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(src[i] * is)));
    return Status::Ok();
  }
  const int g = tr->group;
  for (int64_t b = 0; b * g < n; ++b) {
    const int valid = static_cast<int>(std::min<int64_t>(g, n - b * g));
    const float* x = src + b * g;
    const float* w = importance ? importance + b * g : nullptr;
    uint8_t* o = out + b * tr->block_bytes;
    if (IsE0m4(t)) QuantE0m4Block(x, valid == g ? w : nullptr, g, valid, o);
    else if (tr->asymmetric) QuantAsymBlock(x, valid == g ? w : nullptr, g, valid, o);
    else QuantSymBlock(x, valid == g ? w : nullptr, g, valid, o);
  }
  return Status::Ok();
}

float SetRowElementEq(EqType t, void* row, int64_t index, float x) {
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  uint8_t* r = static_cast<uint8_t*>(row);
  if (tr->group == 0) {  // w8c
    float s;
    std::memcpy(&s, r, 4);
    const int q = s > 0 ? std::clamp(static_cast<int>(std::lround(x * (1.0f / s))), -127, 127) : 0;
    r[4 + index] = static_cast<uint8_t>(static_cast<int8_t>(q));
    return q * s;
  }
  const int g = tr->group;
  uint8_t* blk = r + (index / g) * tr->block_bytes;
  const int j = static_cast<int>(index % g);
  uint16_t dh, mh = 0;
  std::memcpy(&dh, blk, 2);
  if (tr->asymmetric) std::memcpy(&mh, blk + 2, 2);
  const float d = Fp16ToFp32(dh), m = Fp16ToFp32(mh);
  int code;
  float value;
  if (IsE0m4(t)) {
    code = NearestE0m4Code(x, d, m);
    value = BitsToFloat(E0m4ToFp32Bits(code)) * d + (m - d);
  } else if (tr->asymmetric) {
    code = d > 0 ? std::clamp(static_cast<int>(std::lround((x - m) * (1.0f / d))), 0, 15) : 0;
    value = code * d + m;
  } else {
    const int q = d != 0 ? std::clamp(static_cast<int>(std::lround(x * (1.0f / d))), -8, 7) : 0;
    code = q + 8;
    value = q * d;
  }
  uint8_t* qs = blk + (tr->asymmetric ? 4 : 2);
  if (j < g / 2) qs[j] = static_cast<uint8_t>((qs[j] & 0xF0) | code);
  else qs[j - g / 2] = static_cast<uint8_t>((qs[j - g / 2] & 0x0F) | (code << 4));
  return value;
}

Status DequantizeRowEq(EqType t, const void* src, float* dst, int64_t n) {
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  if (tr == nullptr) return InvalidArgument("not an edgeq type");
  const uint8_t* in = static_cast<const uint8_t*>(src);
  if (tr->group == 0) {
    float s;
    std::memcpy(&s, in, 4);
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<int8_t>(in[4 + i]) * s;
    return Status::Ok();
  }
  const int g = tr->group;
  float block[128];
  for (int64_t b = 0; b * g < n; ++b) {
    const uint8_t* blk = in + b * tr->block_bytes;
    uint16_t dh, mh = 0;
    std::memcpy(&dh, blk, 2);
    if (tr->asymmetric) std::memcpy(&mh, blk + 2, 2);
    const float d = Fp16ToFp32(dh), m = Fp16ToFp32(mh);
    const uint8_t* qs = blk + (tr->asymmetric ? 4 : 2);
    for (int j = 0; j < g / 2; ++j) {
      const int q0 = qs[j] & 0x0F, q1 = qs[j] >> 4;
      if (IsE0m4(t)) {
        // The E0M4 bit conversion (eq_types.h): code -> float in [1, 2) by shift + or.
        const float b = m - d;
        block[j] = BitsToFloat(E0m4ToFp32Bits(q0)) * d + b;
        block[j + g / 2] = BitsToFloat(E0m4ToFp32Bits(q1)) * d + b;
      } else if (tr->asymmetric) {
        block[j] = q0 * d + m;
        block[j + g / 2] = q1 * d + m;
      } else {
        block[j] = (q0 - 8) * d;
        block[j + g / 2] = (q1 - 8) * d;
      }
    }
    const int valid = static_cast<int>(std::min<int64_t>(g, n - b * g));
    std::memcpy(dst + b * g, block, sizeof(float) * valid);
  }
  return Status::Ok();
}

Status DequantizeRowE0m4Reference(EqType t, const void* src, float* dst, int64_t n) {
  if (!IsE0m4(t)) return InvalidArgument("not an E0M4 type");
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  const uint8_t* in = static_cast<const uint8_t*>(src);
  const int g = tr->group;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* blk = in + (i / g) * tr->block_bytes;
    const int j = static_cast<int>(i % g);
    uint16_t sh, mh;
    std::memcpy(&sh, blk, 2);
    std::memcpy(&mh, blk + 2, 2);
    const float s = Fp16ToFp32(sh), m = Fp16ToFp32(mh);
    const int c = j < g / 2 ? (blk[4 + j] & 0x0F) : (blk[4 + j - g / 2] >> 4);
    dst[i] = (1.0f + static_cast<float>(c) / 16.0f) * s + (m - s);
  }
  return Status::Ok();
}

}  // namespace edgeq
