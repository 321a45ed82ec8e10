// KV-cache formats (kernels/kv.h): scalar quantization, the specification, and the
// scalar reference attention loops.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kv.h"

namespace edgeq {

const char* KvTypeName(KvType t) {
  switch (t) {
    case KvType::kF32: return "f32";
    case KvType::kF16: return "f16";
    case KvType::kQ8: return "q8";
    case KvType::kQ4: return "q4";
    case KvType::kQ2: return "q2";
  }
  return "?";
}

bool ParseKvType(const char* s, KvType* out) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8, KvType::kQ4, KvType::kQ2}) {
    if (std::strcmp(s, KvTypeName(t)) == 0) {
      *out = t;
      return true;
    }
  }
  return false;
}

int64_t KvRowBytes(KvType t, int32_t dim) {
  const int64_t params = 4 * static_cast<int64_t>(KvGroups(dim));
  switch (t) {
    case KvType::kF32: return 4 * static_cast<int64_t>(dim);
    case KvType::kF16: return 2 * static_cast<int64_t>(dim);
    case KvType::kQ8: return params + dim;
    case KvType::kQ4: return params + 2 * KvPlaneBytes(dim);
    case KvType::kQ2: return params + KvPlaneBytes(dim);
  }
  return 0;
}

namespace {

inline void PutParams(uint8_t* row, int32_t g, float d, float m) {
  const uint16_t p[2] = {Fp32ToFp16(d), Fp32ToFp16(m)};
  std::memcpy(row + 4 * g, p, 4);
}

inline void GetParams(const uint8_t* row, int32_t g, float* d, float* m) {
  uint16_t p[2];
  std::memcpy(p, row + 4 * g, 4);
  *d = Fp16ToFp32(p[0]);
  *m = Fp16ToFp32(p[1]);
}

inline int Get2(const uint8_t* plane, int64_t i) { return (plane[i >> 2] >> (2 * (i & 3))) & 3; }

// Group g's range [a, b) of channels: codes in 0..levels from the group's min/max, with
// the fp16-rounded parameters (so that decode sees exactly what encode assumed).
template <typename Put>
void QuantizeGroups(const float* x, int32_t dim, int levels, uint8_t* row, Put put) {
  for (int32_t g = 0; g * kKvGroup < dim; ++g) {
    const int32_t a = g * kKvGroup, b = std::min(dim, a + kKvGroup);
    float lo = x[a], hi = x[a];
    for (int32_t i = a + 1; i < b; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    const float m = Fp16ToFp32(Fp32ToFp16(lo));
    float d = Fp16ToFp32(Fp32ToFp16(std::max(0.0f, hi - m) / levels));
    // fp16 rounding may shrink d so that the max no longer fits; one ulp up fixes it.
    if (d > 0 && m + d * levels < hi) d = Fp16ToFp32(static_cast<uint16_t>(Fp32ToFp16(d) + 1));
    PutParams(row, g, d, m);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int32_t i = a; i < b; ++i) {
      const int c = static_cast<int>(std::lrintf((x[i] - m) * inv));
      put(i, std::clamp(c, 0, levels));
    }
  }
}

}  // namespace

void KvQuantizeRowPlanes(const float* x, int32_t dim, int bits, uint8_t* row, uint8_t* lo) {
  const int64_t pb = KvPlaneBytes(dim);
  uint8_t* hi = row + 4 * KvGroups(dim);
  std::memset(hi, 0, pb);
  if (bits == 4) {
    std::memset(lo, 0, pb);
    QuantizeGroups(x, dim, 15, row, [&](int32_t i, int c) {
      hi[i >> 2] |= static_cast<uint8_t>((c >> 2) << (2 * (i & 3)));
      lo[i >> 2] |= static_cast<uint8_t>((c & 3) << (2 * (i & 3)));
    });
  } else {
    QuantizeGroups(x, dim, 3, row, [&](int32_t i, int c) { hi[i >> 2] |= static_cast<uint8_t>(c << (2 * (i & 3))); });
  }
}

void KvQuantizeRow(KvType t, const float* x, int32_t dim, uint8_t* row) {
  switch (t) {
    case KvType::kF32:
      std::memcpy(row, x, 4 * static_cast<size_t>(dim));
      return;
    case KvType::kF16: {
      uint16_t* h = reinterpret_cast<uint16_t*>(row);
      for (int32_t i = 0; i < dim; ++i) h[i] = Fp32ToFp16(x[i]);
      return;
    }
    case KvType::kQ8: {
      uint8_t* c8 = row + 4 * KvGroups(dim);
      QuantizeGroups(x, dim, 255, row, [&](int32_t i, int c) { c8[i] = static_cast<uint8_t>(c); });
      return;
    }
    case KvType::kQ4:
      KvQuantizeRowPlanes(x, dim, 4, row, row + KvQ4LoOffset(dim));
      return;
    case KvType::kQ2:
      KvQuantizeRowPlanes(x, dim, 2, row, nullptr);
      return;
  }
}

void KvDequantizeRow(KvKernel kind, const uint8_t* row, const uint8_t* lo, int32_t dim, float* x) {
  switch (kind) {
    case KvKernel::kF32:
      std::memcpy(x, row, 4 * static_cast<size_t>(dim));
      return;
    case KvKernel::kF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
      for (int32_t i = 0; i < dim; ++i) x[i] = Fp16ToFp32(h[i]);
      return;
    }
    case KvKernel::kQ8:
    case KvKernel::kQ2p: {
      const uint8_t* codes = row + 4 * KvGroups(dim);
      for (int32_t i = 0; i < dim; ++i) {
        float d, m;
        GetParams(row, i / kKvGroup, &d, &m);
        int c;
        if (kind == KvKernel::kQ8) {
          c = codes[i];
        } else {
          c = Get2(codes, i);
          if (lo != nullptr) c = 4 * c + Get2(lo, i);
        }
        x[i] = m + d * static_cast<float>(c);
      }
      return;
    }
  }
}

void KvDropLoPlane(uint8_t* row, int32_t dim) {
  for (int32_t g = 0; g < KvGroups(dim); ++g) {
    float d, m;
    GetParams(row, g, &d, &m);
    PutParams(row, g, 4.0f * d, m + 1.5f * d);
  }
}

namespace {
inline float AsFloat(float x) { return x; }
inline float AsFloat(uint16_t h) { return Fp16ToFp32(h); }

template <typename T>
void QuantizeKeyBlock(const T* xs, int32_t n, int32_t dim, int bits, uint8_t* params, uint8_t* codes, uint8_t* lo) {
  auto x = [&](int64_t i) { return AsFloat(xs[i]); };
  const int levels = bits == 8 ? 255 : bits == 4 ? 15 : 3;
  const int64_t crow = bits == 8 ? dim : KvPlaneBytes(dim);
  std::memset(codes, 0, static_cast<size_t>(crow) * n);
  if (lo != nullptr) std::memset(lo, 0, static_cast<size_t>(KvPlaneBytes(dim)) * n);
  uint16_t* pd = reinterpret_cast<uint16_t*>(params);
  for (int32_t e = 0; e < dim; ++e) {
    float lo_v = n > 0 ? x(e) : 0.0f, hi_v = lo_v;
    for (int32_t i = 1; i < n; ++i) {
      lo_v = std::min(lo_v, x(static_cast<int64_t>(i) * dim + e));
      hi_v = std::max(hi_v, x(static_cast<int64_t>(i) * dim + e));
    }
    // As QuantizeGroups: fp16-rounded parameters, one ulp up when the max no longer fits.
    const float m = Fp16ToFp32(Fp32ToFp16(lo_v));
    float d = Fp16ToFp32(Fp32ToFp16(std::max(0.0f, hi_v - m) / levels));
    if (d > 0 && m + d * levels < hi_v) d = Fp16ToFp32(static_cast<uint16_t>(Fp32ToFp16(d) + 1));
    const uint16_t hd = Fp32ToFp16(d), hm = Fp32ToFp16(m);
    std::memcpy(pd + e, &hd, 2);
    std::memcpy(pd + dim + e, &hm, 2);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int32_t i = 0; i < n; ++i) {
      const int c = std::clamp(static_cast<int>(std::lrintf((x(static_cast<int64_t>(i) * dim + e) - m) * inv)), 0, levels);
      uint8_t* row = codes + i * crow;
      if (bits == 8) {
        row[e] = static_cast<uint8_t>(c);
      } else if (bits == 4) {
        row[e >> 2] |= static_cast<uint8_t>((c >> 2) << (2 * (e & 3)));
        lo[i * KvPlaneBytes(dim) + (e >> 2)] |= static_cast<uint8_t>((c & 3) << (2 * (e & 3)));
      } else {
        row[e >> 2] |= static_cast<uint8_t>(c << (2 * (e & 3)));
      }
    }
  }
}

}  // namespace

void KvQuantizeKeyBlock(const float* x, int32_t n, int32_t dim, int bits, uint8_t* params, uint8_t* codes,
                        uint8_t* lo) {
  QuantizeKeyBlock(x, n, dim, bits, params, codes, lo);
}

void KvQuantizeKeyBlockF16(const uint16_t* x, int32_t n, int32_t dim, int bits, uint8_t* params, uint8_t* codes,
                           uint8_t* lo) {
  QuantizeKeyBlock(x, n, dim, bits, params, codes, lo);
}

void KvDequantizeKeyRow(const uint8_t* params, const uint8_t* codes, const uint8_t* lo, int bits, int32_t dim,
                        float* x) {
  const uint16_t* pd = reinterpret_cast<const uint16_t*>(params);
  for (int32_t e = 0; e < dim; ++e) {
    uint16_t hd, hm;
    std::memcpy(&hd, pd + e, 2);
    std::memcpy(&hm, pd + dim + e, 2);
    int c;
    if (bits == 8) {
      c = codes[e];
    } else {
      c = Get2(codes, e);
      if (lo != nullptr) c = 4 * c + Get2(lo, e);
    }
    x[e] = Fp16ToFp32(hm) + Fp16ToFp32(hd) * static_cast<float>(c);
  }
}

void KvDropKeyBlockLoPlanes(uint8_t* params, int32_t dim) {
  uint16_t* pd = reinterpret_cast<uint16_t*>(params);
  for (int32_t e = 0; e < dim; ++e) {
    uint16_t hd, hm;
    std::memcpy(&hd, pd + e, 2);
    std::memcpy(&hm, pd + dim + e, 2);
    const float d = Fp16ToFp32(hd), m = Fp16ToFp32(hm);
    hd = Fp32ToFp16(4.0f * d);
    hm = Fp32ToFp16(m + 1.5f * d);
    std::memcpy(pd + e, &hd, 2);
    std::memcpy(pd + dim + e, &hm, 2);
  }
}

namespace generic {

namespace {
// Channel d and m of a key-block span.
inline void ChanParams(const KvSpan& s, int64_t e, float* d, float* m) {
  uint16_t p[2];
  std::memcpy(&p[0], s.params + 2 * e, 2);
  std::memcpy(&p[1], s.params + 2 * (static_cast<int64_t>(s.dim) + e), 2);
  *d = Fp16ToFp32(p[0]);
  *m = Fp16ToFp32(p[1]);
}

inline int CodeAt(const KvSpan& s, const uint8_t* codes, const uint8_t* lo, int64_t e) {
  if (s.kind == KvKernel::kQ8) return codes[e];
  int c = Get2(codes, e);
  if (lo != nullptr) c = 4 * c + Get2(lo, e);
  return c;
}
}  // namespace

namespace {
void KvScores1(const KvSpan& s, int64_t off, int32_t hd, const float* q, float scale, float* out) {
  const int32_t ng = KvGroups(s.dim);
  for (int32_t i = 0; i < s.n; ++i) {
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    float acc = 0;
    switch (s.kind) {
      case KvKernel::kF32:
        acc = DotF32(q, reinterpret_cast<const float*>(row) + off, hd);
        break;
      case KvKernel::kF16: {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + off;
        for (int32_t e = 0; e < hd; ++e) acc += q[e] * Fp16ToFp32(h[e]);
        break;
      }
      case KvKernel::kQ8:
      case KvKernel::kQ2p: {
        const uint8_t* lo = s.kind == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
        if (s.params != nullptr) {  // key block: per-channel d, m; the row is codes only
          for (int64_t e = off; e < off + hd; ++e) {
            float d, m;
            ChanParams(s, e, &d, &m);
            acc += q[e - off] * (m + d * static_cast<float>(CodeAt(s, row, lo, e)));
          }
          break;
        }
        const uint8_t* codes = row + 4 * ng;
        // Per group segment: d * sum(q*c) + m * sum(q).
        for (int64_t a = off; a < off + hd;) {
          const int32_t g = static_cast<int32_t>(a / kKvGroup);
          const int64_t b = std::min<int64_t>(off + hd, static_cast<int64_t>(g + 1) * kKvGroup);
          float d, m, sqc = 0, sq = 0;
          GetParams(row, g, &d, &m);
          for (int64_t e = a; e < b; ++e) {
            int c;
            if (s.kind == KvKernel::kQ8) {
              c = codes[e];
            } else {
              c = Get2(codes, e);
              if (lo != nullptr) c = 4 * c + Get2(lo, e);
            }
            sqc += q[e - off] * static_cast<float>(c);
            sq += q[e - off];
          }
          acc += d * sqc + m * sq;
          a = b;
        }
        break;
      }
    }
    out[i] = acc * scale;
  }
}

void KvAccum1(const KvSpan& s, int64_t off, int32_t hd, const float* p, float* out) {
  const int32_t ng = KvGroups(s.dim);
  for (int32_t i = 0; i < s.n; ++i) {
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    switch (s.kind) {
      case KvKernel::kF32:
        AxpyF32(p[i], reinterpret_cast<const float*>(row) + off, out, hd);
        break;
      case KvKernel::kF16: {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + off;
        for (int32_t e = 0; e < hd; ++e) out[e] += p[i] * Fp16ToFp32(h[e]);
        break;
      }
      case KvKernel::kQ8:
      case KvKernel::kQ2p: {
        const uint8_t* lo = s.kind == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
        if (s.params != nullptr) {
          for (int64_t e = off; e < off + hd; ++e) {
            float d, m;
            ChanParams(s, e, &d, &m);
            out[e - off] += p[i] * (m + d * static_cast<float>(CodeAt(s, row, lo, e)));
          }
          break;
        }
        const uint8_t* codes = row + 4 * ng;
        for (int64_t a = off; a < off + hd;) {
          const int32_t g = static_cast<int32_t>(a / kKvGroup);
          const int64_t b = std::min<int64_t>(off + hd, static_cast<int64_t>(g + 1) * kKvGroup);
          float d, m;
          GetParams(row, g, &d, &m);
          const float pd = p[i] * d, pm = p[i] * m;
          for (int64_t e = a; e < b; ++e) {
            int c;
            if (s.kind == KvKernel::kQ8) {
              c = codes[e];
            } else {
              c = Get2(codes, e);
              if (lo != nullptr) c = 4 * c + Get2(lo, e);
            }
            out[e - off] += pd * static_cast<float>(c) + pm;
          }
          a = b;
        }
        break;
      }
    }
  }
}

}  // namespace

void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride) {
  for (int32_t j = 0; j < nq; ++j) KvScores1(s, off, hd, q + j * q_stride, scale, out + j * out_stride);
}

void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride) {
  for (int32_t j = 0; j < nq; ++j) KvAccum1(s, off, hd, p + j * p_stride, out + j * out_stride);
}

}  // namespace generic
}  // namespace edgeq
