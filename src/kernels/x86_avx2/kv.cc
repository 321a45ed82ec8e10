// AVX2+FMA+F16C attention loops over the KV-cache formats (kernels/kv.h), per-token rows
// and key blocks (per-channel parameters, 8 at a time by F16C). Head slices
// whose offset and length are multiples of 8 run 8 channels per step (a step never
// straddles a 32-channel group): each step dequantizes 8 channels of a row once into a
// register and uses it for every query head of the GQA group. Anything else goes to the
// scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/kv.h"

namespace edgeq::avx2 {

namespace {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline void Params(const uint8_t* row, int64_t g, float* d, float* m) {
  uint32_t p;
  std::memcpy(&p, row + 4 * g, 4);
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(p)));
  *d = _mm_cvtss_f32(f);
  *m = _mm_cvtss_f32(_mm_shuffle_ps(f, f, 1));
}

// 8 two-bit codes (16 bits at plane + e/4, e % 8 == 0) as floats.
inline __m256 Codes2(const uint8_t* plane, int64_t e) {
  uint16_t w;
  std::memcpy(&w, plane + (e >> 2), 2);
  const __m256i v = _mm256_set1_epi32(w);
  const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32(3)));
}

inline __m256 Codes8(const uint8_t* codes, int64_t e) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + e))));
}

// Codes of 8 channels starting at e (q8 or q2p with an optional lo plane).
template <KvKernel K>
inline __m256 Codes(const uint8_t* codes, const uint8_t* lo, int64_t e) {
  if constexpr (K == KvKernel::kQ8) {
    return Codes8(codes, e);
  } else {
    __m256 c = Codes2(codes, e);
    if (lo != nullptr) c = _mm256_fmadd_ps(c, _mm256_set1_ps(4.0f), Codes2(lo, e));
    return c;
  }
}

// 8 dequantized channels [e, e+8) of token row `row` (lo: its lo plane or null). C: a
// key-block span (per-channel d, m at s.params; the row is codes only).
template <KvKernel K, bool C = false>
inline __m256 Load8(const KvSpan& s, const uint8_t* row, const uint8_t* lo, int64_t ng, int64_t e) {
  if constexpr (C) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.params + 2 * e)));
    const __m256 m =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.params + 2 * (s.dim + e))));
    return _mm256_fmadd_ps(d, Codes<K>(row, lo, e), m);
  } else if constexpr (K == KvKernel::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + e);
  } else if constexpr (K == KvKernel::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + e)));
  } else {
    float d, m;
    Params(row, e / kKvGroup, &d, &m);
    return _mm256_fmadd_ps(_mm256_set1_ps(d), Codes<K>(row + 4 * ng, lo, e), _mm256_set1_ps(m));
  }
}

// NQ > 0: nq == NQ known at compile time, so the per-query accumulators live in registers
// (the fp32 path's prefill tiles of up to 4 positions); NQ == 0: any nq (GQA groups).
template <KvKernel K, bool C = false, int NQ = 0>
void Scores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
            float* out, int64_t out_stride) {
  const int64_t ng = KvGroups(s.dim);
  const int32_t nqv = NQ > 0 ? NQ : nq;
  for (int32_t i = 0; i < s.n; ++i) {
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    const uint8_t* lo = K == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
    __m256 acc[NQ > 0 ? NQ : kKvMaxGroup];
#pragma GCC unroll 4
    for (int32_t j = 0; j < nqv; ++j) acc[j] = _mm256_setzero_ps();
    for (int32_t e = 0; e < hd; e += 8) {
      const __m256 v = Load8<K, C>(s, row, lo, ng, off + e);
#pragma GCC unroll 4
      for (int32_t j = 0; j < nqv; ++j) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + j * q_stride + e), v, acc[j]);
    }
#pragma GCC unroll 4
    for (int32_t j = 0; j < nqv; ++j) out[j * out_stride + i] = Hsum(acc[j]) * scale;
  }
}

template <KvKernel K, bool C = false, int NQ = 0>
void Accum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
           int64_t out_stride) {
  const int64_t ng = KvGroups(s.dim);
  if (NQ == 1 && hd <= 64) {  // the output slice stays in registers across tokens
    __m256 acc[8];
    const int32_t nv = hd / 8;
    for (int32_t c = 0; c < nv; ++c) acc[c] = _mm256_loadu_ps(out + 8 * c);
    for (int32_t i = 0; i < s.n; ++i) {
      const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
      const uint8_t* lo = K == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
      const __m256 pi = _mm256_set1_ps(p[i]);
      for (int32_t c = 0; c < nv; ++c) acc[c] = _mm256_fmadd_ps(pi, Load8<K, C>(s, row, lo, ng, off + 8 * c), acc[c]);
    }
    for (int32_t c = 0; c < nv; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
    return;
  }
  if constexpr (NQ > 1) {  // 8 output channels of every query in registers across the rows
    for (int32_t e = 0; e < hd; e += 8) {
      __m256 acc[NQ];
#pragma GCC unroll 4
      for (int32_t j = 0; j < NQ; ++j) acc[j] = _mm256_loadu_ps(out + j * out_stride + e);
      for (int32_t i = 0; i < s.n; ++i) {
        const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
        const uint8_t* lo = K == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
        const __m256 v = Load8<K, C>(s, row, lo, ng, off + e);
#pragma GCC unroll 4
        for (int32_t j = 0; j < NQ; ++j) acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(p[j * p_stride + i]), v, acc[j]);
      }
#pragma GCC unroll 4
      for (int32_t j = 0; j < NQ; ++j) _mm256_storeu_ps(out + j * out_stride + e, acc[j]);
    }
    return;
  }
  for (int32_t i = 0; i < s.n; ++i) {
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    const uint8_t* lo = K == KvKernel::kQ2p ? KvLoPlane(s, i) : nullptr;
    for (int32_t e = 0; e < hd; e += 8) {
      const __m256 v = Load8<K, C>(s, row, lo, ng, off + e);
      for (int32_t j = 0; j < nq; ++j) {
        float* y = out + j * out_stride + e;
        _mm256_storeu_ps(y, _mm256_fmadd_ps(_mm256_set1_ps(p[j * p_stride + i]), v, _mm256_loadu_ps(y)));
      }
    }
  }
}

// One kind and key layout: the compile-time query counts 1-4, any other nq at run time.
// fp32/f16 rows (nothing to dequantize, so nothing shared is lost by splitting): more than
// 4 queries (the fp32 path's prefill tiles) as calls of at most 4, in registers.
template <KvKernel K, bool C>
void ScoresNq(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride) {
  if ((K == KvKernel::kF32 || K == KvKernel::kF16) && nq > 4) {
    for (int32_t j = 0; j < nq; j += 4) {
      ScoresNq<K, C>(s, off, hd, q + j * q_stride, std::min(4, nq - j), q_stride, scale, out + j * out_stride,
                     out_stride);
    }
    return;
  }
  switch (nq) {
    case 1: return Scores<K, C, 1>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case 2: return Scores<K, C, 2>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case 3: return Scores<K, C, 3>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case 4: return Scores<K, C, 4>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    default: return Scores<K, C, 0>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  }
}

template <KvKernel K, bool C>
void AccumNq(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride) {
  if ((K == KvKernel::kF32 || K == KvKernel::kF16) && nq > 4) {
    for (int32_t j = 0; j < nq; j += 4) {
      AccumNq<K, C>(s, off, hd, p + j * p_stride, std::min(4, nq - j), p_stride, out + j * out_stride, out_stride);
    }
    return;
  }
  switch (nq) {
    case 1: return Accum<K, C, 1>(s, off, hd, p, nq, p_stride, out, out_stride);
    case 2: return Accum<K, C, 2>(s, off, hd, p, nq, p_stride, out, out_stride);
    case 3: return Accum<K, C, 3>(s, off, hd, p, nq, p_stride, out, out_stride);
    case 4: return Accum<K, C, 4>(s, off, hd, p, nq, p_stride, out, out_stride);
    default: return Accum<K, C, 0>(s, off, hd, p, nq, p_stride, out, out_stride);
  }
}

inline bool Vectorizable(int64_t off, int32_t hd, int32_t nq) {
  return off % 8 == 0 && hd % 8 == 0 && hd > 0 && nq <= kKvMaxGroup;
}

}  // namespace

void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride) {
  if (!Vectorizable(off, hd, nq)) return generic::KvScores(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  switch (s.kind) {
    case KvKernel::kF32: return ScoresNq<KvKernel::kF32, false>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case KvKernel::kF16: return ScoresNq<KvKernel::kF16, false>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case KvKernel::kQ8:
      if (s.params != nullptr) return ScoresNq<KvKernel::kQ8, true>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
      return ScoresNq<KvKernel::kQ8, false>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case KvKernel::kQ2p:
      if (s.params != nullptr) return ScoresNq<KvKernel::kQ2p, true>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
      return ScoresNq<KvKernel::kQ2p, false>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  }
}

void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride) {
  if (!Vectorizable(off, hd, nq)) return generic::KvAccum(s, off, hd, p, nq, p_stride, out, out_stride);
  switch (s.kind) {
    case KvKernel::kF32: return AccumNq<KvKernel::kF32, false>(s, off, hd, p, nq, p_stride, out, out_stride);
    case KvKernel::kF16: return AccumNq<KvKernel::kF16, false>(s, off, hd, p, nq, p_stride, out, out_stride);
    case KvKernel::kQ8:
      if (s.params != nullptr) return AccumNq<KvKernel::kQ8, true>(s, off, hd, p, nq, p_stride, out, out_stride);
      return AccumNq<KvKernel::kQ8, false>(s, off, hd, p, nq, p_stride, out, out_stride);
    case KvKernel::kQ2p:
      if (s.params != nullptr) return AccumNq<KvKernel::kQ2p, true>(s, off, hd, p, nq, p_stride, out, out_stride);
      return AccumNq<KvKernel::kQ2p, false>(s, off, hd, p, nq, p_stride, out, out_stride);
  }
}

}  // namespace edgeq::avx2
