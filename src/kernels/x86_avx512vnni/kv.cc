// AVX-512 attention loops over the KV-cache formats (kernels/kv.h), for head slices whose
// offset and length are multiples of 16 (head_dim 48, 64, 128, ...; quantized kinds up
// to 256). Other slices go to the AVX2 kernels.
//
// Scores: one vector of 16 lanes per (query, key row) would need a horizontal sum per
// score, which for head_dim 48 costs as much as its 3 FMAs. Instead 16 rows are scored
// together: their 16 partial-sum vectors are folded into one vector of 16 scores by a
// transpose-add tree (45 shuffles and adds for 16 scores instead of 16 horizontal sums).
// The 16 rows stay in L1 while every query of the call is scored against them.
//
// Values: out += p * V as a small matrix product; a register tile of up to 4 queries x
// 4 vectors of 16 channels is kept across all the rows of the span.
//
// Quantized rows (q8, q4/q2 planes, per-token groups or key blocks) are dequantized in
// chunks into an fp32 tile in L1 that the same two loops read (DequantRows below). On the
// Xeon (2 threads, tinyllama w4a8-g128, decode at depth 1536, medians of 3 interleaved
// rounds) this took --kv-type q8 from 30.6 to 40.3 t/s, q4 31.3 -> 40.1, adaptive
// 30.5 -> 40.2, level with f16 (~39) where the AVX2 loops had left them compute-bound;
// kv_block/*/q8/hd64/nq8/n1536 (kernel_bench) 159 -> ~50 us.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_ps() inside _mm512_cvtph_ps as "may be used
// uninitialized" (a false positive of the intrinsics headers).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/kv.h"

namespace edgeq {
namespace avx2 {
void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride);
void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride);
}  // namespace avx2

namespace avx512vnni {

namespace {

// 16 channels of a row at element offset e.
template <KvKernel K>
inline __m512 Load16(const uint8_t* row, int64_t e) {
  if constexpr (K == KvKernel::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + e);
  } else {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + e;
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
  }
}

// Lane r of the result = the sum of the 16 lanes of v[r]. Each level halves the number
// of vectors and doubles the number of rows per vector: pairs of rows by unpack (ps),
// quads by unpack (pd), then the 128-bit lanes by shuffle_f32x4; results in row order.
__attribute__((always_inline)) inline __m512 SumRows16(const __m512 v[16]) {
  __m512 a[8], b[4], c[2];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    a[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512d x = _mm512_castps_pd(a[2 * k]), y = _mm512_castps_pd(a[2 * k + 1]);
    b[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  // b[k]: 128-bit lane L holds the sums over channels 4L..4L+3 (mod 16) of rows 4k..4k+3.
#pragma GCC unroll 2
  for (int k = 0; k < 2; ++k) {
    c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // c[k]: lanes (rows 8k..8k+3 | 8k+4..8k+7) x (channel halves 0, 1).
  return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Scores of rows [i0, i0 + m) (m <= 16) for every query. Tail: m < 16, rows past the
// span repeat its last row (never read out of bounds) and their lanes are not stored.
// C > 0: hd == 16 * C known at compile time (a query's vectors stay in registers and
// the loads use immediate offsets from the 16 row pointers, computed once per group).
template <KvKernel K, int C>
inline void Scores16(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride,
                     float scale, float* out, int64_t out_stride, int32_t i0, int32_t m) {
  constexpr int kEs = K == KvKernel::kF32 ? 4 : 2;  // bytes per element
  const uint8_t* rp[16];
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) rp[r] = s.rows + (i0 + std::min(r, m - 1)) * s.stride + off * kEs;
  const __m512 vs = _mm512_set1_ps(scale);
  const __mmask16 store = static_cast<__mmask16>((1u << m) - 1);
  for (int32_t j = 0; j < nq; ++j) {
    const float* qj = q + j * q_stride;
    __m512 acc[16];
    if constexpr (C > 0) {
      __m512 qv[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) qv[c] = _mm512_loadu_ps(qj + 16 * c);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) {
        acc[r] = _mm512_mul_ps(qv[0], Load16<K>(rp[r], 0));
#pragma GCC unroll 8
        for (int c = 1; c < C; ++c) acc[r] = _mm512_fmadd_ps(qv[c], Load16<K>(rp[r], 16 * c), acc[r]);
      }
    } else {
      __m512 qv = _mm512_loadu_ps(qj);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = _mm512_mul_ps(qv, Load16<K>(rp[r], 0));
      for (int32_t e = 16; e < hd; e += 16) {
        qv = _mm512_loadu_ps(qj + e);
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) acc[r] = _mm512_fmadd_ps(qv, Load16<K>(rp[r], e), acc[r]);
      }
    }
    _mm512_mask_storeu_ps(out + j * out_stride + i0, store, _mm512_mul_ps(SumRows16(acc), vs));
  }
}

template <KvKernel K, int C>
void Scores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
            float* out, int64_t out_stride) {
  for (int32_t i0 = 0; i0 < s.n; i0 += 16) {
    Scores16<K, C>(s, off, hd, q, nq, q_stride, scale, out, out_stride, i0, std::min(16, s.n - i0));
  }
}

template <KvKernel K>
void ScoresHd(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride) {
  switch (hd) {
    case 48: return Scores<K, 3>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case 64: return Scores<K, 4>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    case 128: return Scores<K, 8>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
    default: return Scores<K, 0>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  }
}

// out[j][c] += sum_i p[j][i] * row_i[c] for NQ queries x G vectors of 16 channels
// starting at off (out already offset to the first of them).
template <KvKernel K, int NQ, int G>
void AccumTile(const KvSpan& s, int64_t off, const float* p, int64_t p_stride, float* out, int64_t out_stride) {
  __m512 acc[NQ][G];
#pragma GCC unroll 4
  for (int j = 0; j < NQ; ++j) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[j][g] = _mm512_loadu_ps(out + j * out_stride + 16 * g);
  }
  int32_t i = 0;
  if constexpr (NQ == 1 && G <= 4) {
    // One query: a second set of accumulators for the odd rows, so that at least 2G
    // independent FMA chains hide the FMA latency.
    __m512 acc2[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc2[g] = _mm512_setzero_ps();
    for (; i + 2 <= s.n; i += 2) {
      const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
      const __m512 p0 = _mm512_set1_ps(p[i]), p1 = _mm512_set1_ps(p[i + 1]);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        acc[0][g] = _mm512_fmadd_ps(p0, Load16<K>(row, off + 16 * g), acc[0][g]);
        acc2[g] = _mm512_fmadd_ps(p1, Load16<K>(row + s.stride, off + 16 * g), acc2[g]);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[0][g] = _mm512_add_ps(acc[0][g], acc2[g]);
  }
  for (; i < s.n; ++i) {
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    __m512 v[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) v[g] = Load16<K>(row, off + 16 * g);
#pragma GCC unroll 4
    for (int j = 0; j < NQ; ++j) {
      const __m512 pj = _mm512_set1_ps(p[j * p_stride + i]);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[j][g] = _mm512_fmadd_ps(pj, v[g], acc[j][g]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < NQ; ++j) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) _mm512_storeu_ps(out + j * out_stride + 16 * g, acc[j][g]);
  }
}

using AccumTileFn = void (*)(const KvSpan&, int64_t, const float*, int64_t, float*, int64_t);

template <KvKernel K, int NQ>
constexpr AccumTileFn kTiles[4] = {AccumTile<K, NQ, 1>, AccumTile<K, NQ, 2>, AccumTile<K, NQ, 3>,
                                   AccumTile<K, NQ, 4>};

// Queries in groups of up to 4, channels in groups of up to 4 vectors (one query: up to
// 8, a whole head of 128 kept in registers).
template <KvKernel K>
void Accum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
           int64_t out_stride) {
  const int32_t nv = hd / 16;
  if (nq == 1 && nv > 4 && nv <= 8) {
    constexpr AccumTileFn wide[4] = {AccumTile<K, 1, 5>, AccumTile<K, 1, 6>, AccumTile<K, 1, 7>, AccumTile<K, 1, 8>};
    return wide[nv - 5](s, off, p, p_stride, out, out_stride);
  }
  for (int32_t j0 = 0; j0 < nq; j0 += 4) {
    const int32_t nj = std::min(4, nq - j0);
    const AccumTileFn* tiles = nj == 1 ? kTiles<K, 1> : nj == 2 ? kTiles<K, 2> : nj == 3 ? kTiles<K, 3> : kTiles<K, 4>;
    // Split nv into groups of at most 4, as even as possible (3 = 3, 5 = 3 + 2, 8 = 4 + 4).
    const int32_t ng = (nv + 3) / 4;
    for (int32_t g0 = 0, gi = 0; gi < ng; ++gi) {
      const int32_t gn = (nv - g0) / (ng - gi);
      tiles[gn - 1](s, off + 16 * g0, p + j0 * p_stride, p_stride, out + j0 * out_stride + 16 * g0, out_stride);
      g0 += gn;
    }
  }
}

// Quantized rows (q8, q2p with or without lo planes; per-token groups or key blocks) are
// dequantized a chunk of rows at a time into an fp32 tile on the stack (at most 16 KiB,
// so it stays in L1), which the fp32 loops above then score or accumulate: each row is
// dequantized once per call, whatever the number of queries, instead of once per query
// (scores) or per tile of 4 queries (values) if the fp32 loops dequantized as they load.
constexpr int32_t kTileFloats = 4096;
constexpr int32_t kMaxQuantHd = kTileFloats / 16;  // a tile holds at least 16 rows

inline int32_t Load32(const uint8_t* p) {
  int32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// 16 two-bit codes (the 32 bits at plane + e/4, e % 16 == 0) as integers 0..3.
inline __m512i Codes2(const uint8_t* plane, int64_t e) {
  const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i w = _mm512_set1_epi32(Load32(plane + (e >> 2)));
  return _mm512_and_si512(_mm512_srlv_epi32(w, sh), _mm512_set1_epi32(3));
}

// Rows [i0, i0 + m) of span s, channels [off, off + hd), to tile[r * hd + e]. K: kQ8 or
// kQ2p; Lo: the span has lo planes (some tokens may not: without branching, such a row
// takes its own hi plane as "lo" and does not shift hi, so hi | hi = hi); C: key block.
template <KvKernel K, bool Lo, bool C>
void DequantRows(const KvSpan& s, int64_t off, int32_t hd, int32_t i0, int32_t m, float* tile) {
  const int64_t ng = KvGroups(s.dim);
  const int64_t g0 = off / kKvGroup, gn = (off + hd - 1) / kKvGroup - g0 + 1;  // <= 9 groups
  for (int32_t r = 0; r < m; ++r) {
    const int32_t i = i0 + r;
    const uint8_t* row = s.rows + static_cast<int64_t>(i) * s.stride;
    const uint8_t* codes = C ? row : row + 4 * ng;
    const uint8_t* lo = Lo ? KvLoPlane(s, i) : nullptr;
    const __m128i lo_shift = _mm_cvtsi32_si128(Lo && lo != nullptr ? 2 : 0);
    if (Lo && lo == nullptr) lo = codes;
    float* t = tile + static_cast<int64_t>(r) * hd;
    // Per-token groups: the {d, m} pairs of the slice's groups as floats, 8 groups per
    // conversion, which the FMAs below read as broadcasts from memory (load ports, not
    // the vector ALU ports that the code conversions keep busy).
    alignas(64) float dm[2 * 16];
    if constexpr (!C) {
      for (int64_t g = 0; g < gn; g += 8) {
        const __mmask16 k = static_cast<__mmask16>((1u << (2 * std::min<int64_t>(8, gn - g))) - 1);
        _mm512_store_ps(dm + 2 * g, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, row + 4 * (g0 + g))));
      }
    }
    for (int32_t e = 0; e < hd; e += 16) {
      const int64_t c = off + e;
      __m512 v;
      if constexpr (K == KvKernel::kQ8) {
        v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + c))));
      } else {
        __m512i k = Codes2(codes, c);
        if constexpr (Lo) k = _mm512_or_si512(_mm512_sll_epi32(k, lo_shift), Codes2(lo, c));
        v = _mm512_cvtepi32_ps(k);
      }
      __m512 d, mn;
      if constexpr (C) {
        d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.params + 2 * c)));
        mn = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.params + 2 * (s.dim + c))));
      } else {
        const int64_t g = c / kKvGroup - g0;
        d = _mm512_set1_ps(dm[2 * g]);
        mn = _mm512_set1_ps(dm[2 * g + 1]);
      }
      _mm512_store_ps(t + e, _mm512_fmadd_ps(d, v, mn));
    }
  }
}

// The chunks of a quantized span as fp32 spans (kind kF32, dim hd, offset 0) for Fn.
template <KvKernel K, bool Lo, bool C, typename Fn>
void ForEachTile(const KvSpan& s, int64_t off, int32_t hd, Fn&& fn) {
  alignas(64) float tile[kTileFloats];
  const int32_t rows = std::min(64, kTileFloats / hd / 16 * 16);
  KvSpan ts;
  ts.kind = KvKernel::kF32;
  ts.dim = hd;
  ts.rows = reinterpret_cast<const uint8_t*>(tile);
  ts.stride = static_cast<int64_t>(hd) * 4;
  for (int32_t i0 = 0; i0 < s.n; i0 += rows) {
    ts.n = std::min(rows, s.n - i0);
    DequantRows<K, Lo, C>(s, off, hd, i0, ts.n, tile);
    fn(ts, i0);
  }
}

// The quantized variants for Fn(K, Lo, C) (each a ForEachTile instantiation).
template <typename Fn>
void DispatchQuant(const KvSpan& s, Fn&& fn) {
  const bool c = s.params != nullptr, lo = s.lo != nullptr;
  if (s.kind == KvKernel::kQ8) {
    if (c) return fn.template operator()<KvKernel::kQ8, false, true>();
    return fn.template operator()<KvKernel::kQ8, false, false>();
  }
  if (c) {
    if (lo) return fn.template operator()<KvKernel::kQ2p, true, true>();
    return fn.template operator()<KvKernel::kQ2p, false, true>();
  }
  if (lo) return fn.template operator()<KvKernel::kQ2p, true, false>();
  return fn.template operator()<KvKernel::kQ2p, false, false>();
}

inline bool Fits(const KvSpan& s, int64_t off, int32_t hd, int32_t nq) {
  const bool quant = s.kind == KvKernel::kQ8 || s.kind == KvKernel::kQ2p;
  return off % 16 == 0 && hd % 16 == 0 && hd > 0 && nq <= kKvMaxGroup && (!quant || hd <= kMaxQuantHd);
}

}  // namespace

void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride) {
  if (!Fits(s, off, hd, nq)) return avx2::KvScores(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  if (s.kind == KvKernel::kF32) return ScoresHd<KvKernel::kF32>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  if (s.kind == KvKernel::kF16) return ScoresHd<KvKernel::kF16>(s, off, hd, q, nq, q_stride, scale, out, out_stride);
  DispatchQuant(s, [&]<KvKernel K, bool Lo, bool C>() {
    ForEachTile<K, Lo, C>(s, off, hd, [&](const KvSpan& ts, int32_t i0) {
      ScoresHd<KvKernel::kF32>(ts, 0, hd, q, nq, q_stride, scale, out + i0, out_stride);
    });
  });
}

void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride) {
  if (!Fits(s, off, hd, nq)) return avx2::KvAccum(s, off, hd, p, nq, p_stride, out, out_stride);
  if (s.kind == KvKernel::kF32) return Accum<KvKernel::kF32>(s, off, hd, p, nq, p_stride, out, out_stride);
  if (s.kind == KvKernel::kF16) return Accum<KvKernel::kF16>(s, off, hd, p, nq, p_stride, out, out_stride);
  DispatchQuant(s, [&]<KvKernel K, bool Lo, bool C>() {
    ForEachTile<K, Lo, C>(s, off, hd, [&](const KvSpan& ts, int32_t i0) {
      Accum<KvKernel::kF32>(ts, 0, hd, p + i0, nq, p_stride, out, out_stride);
    });
  });
}

}  // namespace avx512vnni
}  // namespace edgeq
