// ggml block formats: layouts, traits and exact scalar dequantizers (same float
// operations in the same order as ggml's reference dequantize_row_*), plus reference
// quantizers for the types edgeq writes.
#include "format/ggml_types.h"

#include <cmath>
#include <cstring>

#include "core/fp16.h"

namespace edgeq {
namespace {

constexpr int kQK = 32;     // elements per block, legacy formats
constexpr int kQK_K = 256;  // elements per super-block, K-quants

// Q4_0: one fp16 scale d, 16 bytes of nibbles. Element j (j<16) is the low nibble of
// qs[j], element j+16 its high nibble; value = (nibble - 8) * d.
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
static_assert(sizeof(BlockQ4_0) == 18);
// Q4_1: scale d and minimum m (fp16); value = nibble * d + m.
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[kQK / 2]; };
static_assert(sizeof(BlockQ4_1) == 20);
// Q5_0: like Q4_0 with a fifth bit per element in qh (bit j for element j);
// value = (5-bit - 16) * d.
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
static_assert(sizeof(BlockQ5_0) == 22);
// Q5_1: Q5_0's bits with a minimum: value = 5-bit * d + m.
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
static_assert(sizeof(BlockQ5_1) == 24);
// Q8_0: fp16 scale, 32 int8; value = q * d.
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
static_assert(sizeof(BlockQ8_0) == 34);
// Q8_1: fp16 scale and fp16 d*sum(q) (used by ggml for activations); value = q * d.
struct BlockQ8_1 { uint16_t d, s; int8_t qs[kQK]; };
static_assert(sizeof(BlockQ8_1) == 36);
// Q2_K: 16 sub-blocks of 16; 4-bit scale and 4-bit min per sub-block in `scales`,
// 2-bit values in qs; super-block fp16 d and dmin.
struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; uint16_t d, dmin; };
static_assert(sizeof(BlockQ2_K) == 84);
// Q3_K: 2 low bits in qs, high bit in hmask, 16 6-bit signed scales packed in 12 bytes.
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; uint16_t d; };
static_assert(sizeof(BlockQ3_K) == 110);
// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min each (packed in 12 bytes).
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[kQK_K / 2]; };
static_assert(sizeof(BlockQ4_K) == 144);
// Q5_K: Q4_K plus a fifth bit per element in qh.
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
static_assert(sizeof(BlockQ5_K) == 176);
// Q6_K: 4 low bits in ql, 2 high bits in qh, 16 int8 scales, fp16 d; value = d*sc*(q-32).
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };
static_assert(sizeof(BlockQ6_K) == 210);
// Q8_K: fp32 scale, 256 int8, 16 int16 partial sums (for dot products).
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };
static_assert(sizeof(BlockQ8_K) == 292);

inline float H(uint16_t h) { return Fp16ToFp32(h); }

void DeqF32(const void* src, float* y, int64_t n) { std::memcpy(y, src, n * sizeof(float)); }
void DeqF16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = Fp16ToFp32(x[i]);
}
void DeqBF16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = Bf16ToFp32(x[i]);
}
void DeqF64(const void* src, float* y, int64_t n) {
  const double* x = static_cast<const double*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]);
}

void DeqQ4_0(const void* src, float* y, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kQK + j] = x0 * d;
      y[i * kQK + j + kQK / 2] = x1 * d;
    }
  }
}

void DeqQ4_1(const void* src, float* y, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d), m = H(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[i * kQK + j] = x0 * d + m;
      y[i * kQK + j + kQK / 2] = x1 * d + m;
    }
  }
}

void DeqQ5_0(const void* src, float* y, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
      const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh0) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | xh1) - 16;
      y[i * kQK + j] = x0 * d;
      y[i * kQK + j + kQK / 2] = x1 * d;
    }
  }
}

void DeqQ5_1(const void* src, float* y, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d), m = H(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
      const int x0 = (x[i].qs[j] & 0x0F) | xh0;
      const int x1 = (x[i].qs[j] >> 4) | xh1;
      y[i * kQK + j] = x0 * d + m;
      y[i * kQK + j + kQK / 2] = x1 * d + m;
    }
  }
}

void DeqQ8_0(const void* src, float* y, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = x[i].qs[j] * d;
  }
}

void DeqQ8_1(const void* src, float* y, int64_t n) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = H(x[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = x[i].qs[j] * d;
  }
}

void DeqQ2_K(const void* src, float* y, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = H(x[i].d), min = H(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n128 = 0; n128 < kQK_K; n128 += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        uint8_t sc = x[i].scales[is++];
        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l] >> shift) & 3) - ml;
        sc = x[i].scales[is++];
        dl = d * (sc & 0xF);
        ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l + 16] >> shift) & 3) - ml;
        shift += 2;
      }
      q += 32;
    }
  }
}

void DeqQ3_K(const void* src, float* y, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(src);
  const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d_all = H(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    uint32_t aux[4];
    std::memcpy(aux, x[i].scales, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    int is = 0;
    for (int n128 = 0; n128 < kQK_K; n128 += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) *y++ = dl * (static_cast<int8_t>((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) *y++ = dl * (static_cast<int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
        shift += 2;
        m <<= 1;
      }
      q += 32;
    }
  }
}

inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void DeqQ4_K(const void* src, float* y, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = H(x[i].d), min = H(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < kQK_K; j += 64) {
      ScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      ScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void DeqQ5_K(const void* src, float* y, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = H(x[i].d), min = H(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < kQK_K; j += 64) {
      ScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      ScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

void DeqQ6_K(const void* src, float* y, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = H(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n128 = 0; n128 < kQK_K; n128 += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int8_t q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int8_t q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int8_t q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int8_t q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void DeqQ8_K(const void* src, float* y, int64_t n) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    for (int j = 0; j < kQK_K; ++j) *y++ = x[i].d * x[i].qs[j];
  }
}

constexpr GgmlTypeTraits kTraits[] = {
    {GgmlType::kF32, "f32", 1, 4, true, DeqF32},
    {GgmlType::kF16, "f16", 1, 2, true, DeqF16},
    {GgmlType::kQ4_0, "q4_0", kQK, sizeof(BlockQ4_0), true, DeqQ4_0},
    {GgmlType::kQ4_1, "q4_1", kQK, sizeof(BlockQ4_1), true, DeqQ4_1},
    {GgmlType::kQ5_0, "q5_0", kQK, sizeof(BlockQ5_0), true, DeqQ5_0},
    {GgmlType::kQ5_1, "q5_1", kQK, sizeof(BlockQ5_1), true, DeqQ5_1},
    {GgmlType::kQ8_0, "q8_0", kQK, sizeof(BlockQ8_0), true, DeqQ8_0},
    {GgmlType::kQ8_1, "q8_1", kQK, sizeof(BlockQ8_1), true, DeqQ8_1},
    {GgmlType::kQ2_K, "q2_K", kQK_K, sizeof(BlockQ2_K), true, DeqQ2_K},
    {GgmlType::kQ3_K, "q3_K", kQK_K, sizeof(BlockQ3_K), true, DeqQ3_K},
    {GgmlType::kQ4_K, "q4_K", kQK_K, sizeof(BlockQ4_K), true, DeqQ4_K},
    {GgmlType::kQ5_K, "q5_K", kQK_K, sizeof(BlockQ5_K), true, DeqQ5_K},
    {GgmlType::kQ6_K, "q6_K", kQK_K, sizeof(BlockQ6_K), true, DeqQ6_K},
    {GgmlType::kQ8_K, "q8_K", kQK_K, sizeof(BlockQ8_K), true, DeqQ8_K},
    {GgmlType::kI8, "i8", 1, 1, false, nullptr},
    {GgmlType::kI16, "i16", 1, 2, false, nullptr},
    {GgmlType::kI32, "i32", 1, 4, false, nullptr},
    {GgmlType::kI64, "i64", 1, 8, false, nullptr},
    {GgmlType::kF64, "f64", 1, 8, true, DeqF64},
    {GgmlType::kBF16, "bf16", 1, 2, true, DeqBF16},
};

// --- reference quantizers (llama.cpp's *_ref semantics) ---

void QuantQ8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[i * kQK + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[i * kQK + j] * id));
  }
}

void QuantQ4_0(const float* x, void* dst, int64_t n) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float v = x[i * kQK + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = x[i * kQK + j] * id;
      const float x1 = x[i * kQK + kQK / 2 + j] * id;
      const uint8_t xi0 = std::min<int8_t>(15, static_cast<int8_t>(x0 + 8.5f));
      const uint8_t xi1 = std::min<int8_t>(15, static_cast<int8_t>(x1 + 8.5f));
      y[i].qs[j] = xi0 | (xi1 << 4);
    }
  }
}

}  // namespace

const GgmlTypeTraits* GetGgmlTypeTraits(uint32_t type_id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == type_id) return &t;
  }
  return nullptr;
}

const GgmlTypeTraits& GgmlTraits(GgmlType t) {
  const GgmlTypeTraits* tr = GetGgmlTypeTraits(static_cast<uint32_t>(t));
  return tr ? *tr : kTraits[0];
}

const char* GgmlTypeName(GgmlType t) {
  const GgmlTypeTraits* tr = GetGgmlTypeTraits(static_cast<uint32_t>(t));
  return tr ? tr->name : "unknown";
}

Result<uint64_t> GgmlRowBytes(GgmlType t, uint64_t n) {
  const GgmlTypeTraits* tr = GetGgmlTypeTraits(static_cast<uint32_t>(t));
  if (tr == nullptr) return InvalidArgument("unknown tensor type " + std::to_string(static_cast<uint32_t>(t)));
  if (n % tr->block_size != 0) {
    return InvalidArgument(std::string("row length ") + std::to_string(n) + " is not a multiple of the " + tr->name +
                           " block size " + std::to_string(tr->block_size));
  }
  uint64_t bytes = 0;
  if (!__builtin_mul_overflow(n / tr->block_size, static_cast<uint64_t>(tr->type_size), &bytes)) return bytes;
  return InvalidArgument("row size overflows");
}

Status DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n) {
  const GgmlTypeTraits* tr = GetGgmlTypeTraits(static_cast<uint32_t>(t));
  if (tr == nullptr || !tr->can_dequantize) return Unimplemented(std::string("cannot dequantize type ") + GgmlTypeName(t));
  if (n % tr->block_size != 0) return InvalidArgument("row length is not a multiple of the block size");
  tr->to_float(src, dst, n);
  return Status::Ok();
}

Status QuantizeRowRef(GgmlType t, const float* src, void* dst, int64_t n) {
  const GgmlTypeTraits& tr = GgmlTraits(t);
  if (n % tr.block_size != 0) return InvalidArgument("row length is not a multiple of the block size");
  switch (t) {
    case GgmlType::kF32: std::memcpy(dst, src, n * 4); return Status::Ok();
    case GgmlType::kF16: {
      uint16_t* y = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToFp16(src[i]);
      return Status::Ok();
    }
    case GgmlType::kBF16: {
      uint16_t* y = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToBf16(src[i]);
      return Status::Ok();
    }
    case GgmlType::kQ8_0: QuantQ8_0(src, dst, n); return Status::Ok();
    case GgmlType::kQ4_0: QuantQ4_0(src, dst, n); return Status::Ok();
    default: return Unimplemented(std::string("no quantizer for type ") + GgmlTypeName(t));
  }
}

}  // namespace edgeq
