// Body of the AVX-512 VNNI packed-layout matrix kernels over the generic rows8 layout
// (kernels/packed.h, fp32 scales), included by x86_avx512vnni/packed.cc (and kept able to
// build with maddubs + madd, EDGEQ_VNNI 0). The includer defines EDGEQ_KNS and
// EDGEQ_VNNI (1: vpdpbusd on 256-bit lanes). The AVX2 tier has its own kernels and
// layout (x86_avx2/packed.cc); this one is unchanged since it was validated on an
// AVX-512 machine, which the current development machine is not. Tiles are one row group
// (8 rows, one per 32-bit lane) x up to 4 tokens: a block's weights are unpacked once and
// used for every token of the tile. With 2+ tokens, pairs of row groups go through the
// 512-bit tiles (TileW4x2/TileW8x2: 16 rows per vpdpbusd, the activation broadcasts
// shared), since there the per-token instructions, not the weight reads, are the cost.
#include <immintrin.h>

#include <algorithm>

#include "kernels/packed.h"

namespace edgeq::EDGEQ_KNS {
namespace {

inline __m256i Bcast4(const int8_t* q) {
  int32_t v;
  __builtin_memcpy(&v, q, 4);
  return _mm256_set1_epi32(v);
}

#if EDGEQ_VNNI
// Sum over j of dpbusd(V_j, broadcast(q[4j..4j+3])). Four independent accumulators: one
// chain of 8 dependent vpdpbusd would wait on its latency, not its throughput.
inline __m256i Dp8(const __m256i* v, const int8_t* q) {
  const __m256i z = _mm256_setzero_si256();
  __m256i a0 = _mm256_dpbusd_epi32(z, v[0], Bcast4(q));
  __m256i a1 = _mm256_dpbusd_epi32(z, v[1], Bcast4(q + 4));
  __m256i a2 = _mm256_dpbusd_epi32(z, v[2], Bcast4(q + 8));
  __m256i a3 = _mm256_dpbusd_epi32(z, v[3], Bcast4(q + 12));
  a0 = _mm256_dpbusd_epi32(a0, v[4], Bcast4(q + 16));
  a1 = _mm256_dpbusd_epi32(a1, v[5], Bcast4(q + 20));
  a2 = _mm256_dpbusd_epi32(a2, v[6], Bcast4(q + 24));
  a3 = _mm256_dpbusd_epi32(a3, v[7], Bcast4(q + 28));
  return _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
}
#endif

// Sum over j of V_j . broadcast(q[4j..4j+3]) per 32-bit lane, for nibble weights (<= 15).
inline __m256i DotNib8(const __m256i* v, const int8_t* q) {
#if EDGEQ_VNNI
  return Dp8(v, q);
#else
  // 15 * 127 * 2 per pair and 8 pairs summed stay below 32767: add in int16, widen once.
  __m256i e = _mm256_maddubs_epi16(v[0], Bcast4(q)), o = _mm256_maddubs_epi16(v[1], Bcast4(q + 4));
#pragma GCC unroll 3
  for (int j = 2; j < 8; j += 2) {
    e = _mm256_add_epi16(e, _mm256_maddubs_epi16(v[j], Bcast4(q + 4 * j)));
    o = _mm256_add_epi16(o, _mm256_maddubs_epi16(v[j + 1], Bcast4(q + 4 * j + 4)));
  }
  return _mm256_madd_epi16(_mm256_add_epi16(e, o), _mm256_set1_epi16(1));
#endif
}

// Same for int8 weights. VNNI: v holds w ^ 0x80 (= w + 128 unsigned), corrected by the
// caller with -128 * sum(q). AVX2: v holds the signed weights (sign trick, no correction).
inline __m256i DotW8(const __m256i* v, const __m256i* vabs, const int8_t* q) {
#if EDGEQ_VNNI
  (void)vabs;
  return Dp8(v, q);
#else
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    const __m256i p = _mm256_maddubs_epi16(vabs[j], _mm256_sign_epi8(Bcast4(q + 4 * j), v[j]));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
  }
  return acc;
#endif
}

inline void Store8(float* y, __m256 v, int valid) {
  if (valid == kPackRows) {
    _mm256_storeu_ps(y, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < valid; ++i) y[i] = tmp[i];
  }
}

template <int NT>
void TileW4(const uint8_t* o, int64_t cols, int g, bool asym, const QuantAct& a, int64_t t0, float* y,
            int64_t y_stride, int valid) {
  const int per = g / kActBlock;
  const int64_t nwb = (cols + g - 1) / g, nb = a.nb;
  const float* d = reinterpret_cast<const float*>(o);
  const float* m = asym ? d + nwb * kPackRows : nullptr;
  const uint8_t* qs = o + nwb * kPackRows * 4 * (asym ? 2 : 1);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  int64_t wb = 0;
  int k_in_block = 0;
  for (int64_t ab = 0; ab < nb; ++ab) {
    // Decode streams weights from DRAM: ask for the data ~1 KiB ahead (both lines).
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 128 + 1024), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 128 + 1088), _MM_HINT_T0);
    const __m256 wd = _mm256_loadu_ps(d + wb * kPackRows);
    __m256i v[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + ab * 128 + k * 32));
      v[k] = _mm256_and_si256(p, mask);
      v[k + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      const float ad = a.d[tok * nb + ab];
      const int32_t as = a.s[tok * nb + ab];
      __m256i isum = DotNib8(v, a.q + (tok * nb + ab) * kActBlock);
      if (asym) {
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(wd, _mm256_set1_ps(ad)), acc[t]);
        acc[t] = _mm256_fmadd_ps(_mm256_loadu_ps(m + wb * kPackRows), _mm256_set1_ps(ad * static_cast<float>(as)), acc[t]);
      } else {
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * as));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(wd, _mm256_set1_ps(ad)), acc[t]);
      }
    }
    if (++k_in_block == per) {
      k_in_block = 0;
      ++wb;
    }
  }
  for (int t = 0; t < NT; ++t) Store8(y + (t0 + t) * y_stride, acc[t], valid);
}

template <int NT>
void TileW8(const uint8_t* o, const QuantAct& a, int64_t t0, float* y, int64_t y_stride, int valid) {
  const int64_t nb = a.nb;
  const __m256 scale = _mm256_loadu_ps(reinterpret_cast<const float*>(o));
  const uint8_t* qs = o + 4 * kPackRows;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ab = 0; ab < nb; ++ab) {
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 256 + 2048), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 256 + 2112), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 256 + 2176), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qs + ab * 256 + 2240), _MM_HINT_T0);
    __m256i v[8], vabs[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + ab * 256 + j * 32));
#if EDGEQ_VNNI
      v[j] = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));
#else
      v[j] = w;
      vabs[j] = _mm256_abs_epi8(w);
#endif
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      __m256i isum = DotW8(v, vabs, a.q + (tok * nb + ab) * kActBlock);
#if EDGEQ_VNNI
      isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(128 * a.s[tok * nb + ab]));
#endif
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(a.d[tok * nb + ab]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) Store8(y + (t0 + t) * y_stride, _mm256_mul_ps(acc[t], scale), valid);
}

template <int NT>
void Tile(const EqTypeTraits& tr, const uint8_t* o, int64_t cols, const QuantAct& a, int64_t t0, float* y,
          int64_t y_stride, int valid) {
  if (tr.group == 0) TileW8<NT>(o, a, t0, y, y_stride, valid);
  else TileW4<NT>(o, cols, tr.group, tr.asymmetric, a, t0, y, y_stride, valid);
}

#if EDGEQ_VNNI
// GCC 12's avx512fintrin.h initialises "undefined" registers from themselves, which
// -Wuninitialized reports once these inline (GCC bug 105593); nothing is uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Two row groups at once (16 rows, one per 32-bit lane of a 512-bit register: group A in
// the low half, group B = the next group in the high half): one activation broadcast and
// one vpdpbusd serve 16 rows instead of 8. With several tokens the 8-row tile is bound by
// those per-token instructions, not by reading the weights (batched decode, prefill).
inline __m512i Join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1); }
inline __m512 JoinPs(__m256 lo, __m256 hi) { return _mm512_insertf32x8(_mm512_zextps256_ps512(lo), hi, 1); }

inline __m512i Dp8x2(const __m512i* v, const int8_t* q) {
  auto b = [&](int j) {
    int32_t x;
    __builtin_memcpy(&x, q + 4 * j, 4);
    return _mm512_set1_epi32(x);
  };
  const __m512i z = _mm512_setzero_si512();
  __m512i a0 = _mm512_dpbusd_epi32(z, v[0], b(0));
  __m512i a1 = _mm512_dpbusd_epi32(z, v[1], b(1));
  __m512i a2 = _mm512_dpbusd_epi32(z, v[2], b(2));
  __m512i a3 = _mm512_dpbusd_epi32(z, v[3], b(3));
  a0 = _mm512_dpbusd_epi32(a0, v[4], b(4));
  a1 = _mm512_dpbusd_epi32(a1, v[5], b(5));
  a2 = _mm512_dpbusd_epi32(a2, v[6], b(6));
  a3 = _mm512_dpbusd_epi32(a3, v[7], b(7));
  return _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
}

// Rows of group A are all valid (B follows it); valid_b rows of B are.
inline void Store16(float* y, __m512 v, int valid_b) {
  if (valid_b == kPackRows) {
    _mm512_storeu_ps(y, v);
  } else {
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << (kPackRows + valid_b)) - 1), v);
  }
}

template <int NT>
void TileW4x2(const uint8_t* oa, const uint8_t* ob, int64_t cols, int g, bool asym, const QuantAct& a, int64_t t0,
              float* y, int64_t y_stride, int valid_b) {
  const int per = g / kActBlock;
  const int64_t nwb = (cols + g - 1) / g, nb = a.nb;
  const float* da = reinterpret_cast<const float*>(oa);
  const float* db = reinterpret_cast<const float*>(ob);
  const float* ma = asym ? da + nwb * kPackRows : nullptr;
  const float* mb = asym ? db + nwb * kPackRows : nullptr;
  const uint8_t* qa = oa + nwb * kPackRows * 4 * (asym ? 2 : 1);
  const uint8_t* qb = ob + nwb * kPackRows * 4 * (asym ? 2 : 1);
  const __m512i mask = _mm512_set1_epi8(0x0F);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  int64_t wb = 0;
  int k_in_block = 0;
  for (int64_t ab = 0; ab < nb; ++ab) {
    _mm_prefetch(reinterpret_cast<const char*>(qa + ab * 128 + 1024), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qa + ab * 128 + 1088), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qb + ab * 128 + 1024), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(qb + ab * 128 + 1088), _MM_HINT_T0);
    const __m512 wd = JoinPs(_mm256_loadu_ps(da + wb * kPackRows), _mm256_loadu_ps(db + wb * kPackRows));
    __m512 wm = _mm512_setzero_ps();
    if (asym) wm = JoinPs(_mm256_loadu_ps(ma + wb * kPackRows), _mm256_loadu_ps(mb + wb * kPackRows));
    __m512i v[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m512i p = Join(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + ab * 128 + k * 32)),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + ab * 128 + k * 32)));
      v[k] = _mm512_and_si512(p, mask);
      v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(p, 4), mask);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      const float ad = a.d[tok * nb + ab];
      const int32_t as = a.s[tok * nb + ab];
      __m512i isum = Dp8x2(v, a.q + (tok * nb + ab) * kActBlock);
      if (asym) {
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wd, _mm512_set1_ps(ad)), acc[t]);
        acc[t] = _mm512_fmadd_ps(wm, _mm512_set1_ps(ad * static_cast<float>(as)), acc[t]);
      } else {
        isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(8 * as));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wd, _mm512_set1_ps(ad)), acc[t]);
      }
    }
    if (++k_in_block == per) {
      k_in_block = 0;
      ++wb;
    }
  }
  for (int t = 0; t < NT; ++t) Store16(y + (t0 + t) * y_stride, acc[t], valid_b);
}

template <int NT>
void TileW8x2(const uint8_t* oa, const uint8_t* ob, const QuantAct& a, int64_t t0, float* y, int64_t y_stride,
              int valid_b) {
  const int64_t nb = a.nb;
  const __m512 scale = JoinPs(_mm256_loadu_ps(reinterpret_cast<const float*>(oa)),
                              _mm256_loadu_ps(reinterpret_cast<const float*>(ob)));
  const uint8_t* qa = oa + 4 * kPackRows;
  const uint8_t* qb = ob + 4 * kPackRows;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t ab = 0; ab < nb; ++ab) {
    for (int l = 0; l < 4; ++l) {
      _mm_prefetch(reinterpret_cast<const char*>(qa + ab * 256 + 2048 + 64 * l), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(qb + ab * 256 + 2048 + 64 * l), _MM_HINT_T0);
    }
    __m512i v[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      v[j] = _mm512_xor_si512(Join(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + ab * 256 + j * 32)),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + ab * 256 + j * 32))),
                              flip);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      __m512i isum = Dp8x2(v, a.q + (tok * nb + ab) * kActBlock);
      isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(128 * a.s[tok * nb + ab]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(a.d[tok * nb + ab]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) Store16(y + (t0 + t) * y_stride, _mm512_mul_ps(acc[t], scale), valid_b);
}

template <int NT>
void Tile2(const EqTypeTraits& tr, const uint8_t* oa, const uint8_t* ob, int64_t cols, const QuantAct& a, int64_t t0,
           float* y, int64_t y_stride, int valid_b) {
  if (tr.group == 0) TileW8x2<NT>(oa, ob, a, t0, y, y_stride, valid_b);
  else TileW4x2<NT>(oa, ob, cols, tr.group, tr.asymmetric, a, t0, y, y_stride, valid_b);
}
#pragma GCC diagnostic pop
#endif  // EDGEQ_VNNI

}  // namespace

void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const uint64_t gbytes = PackedGroupBytes(t, cols);
  int64_t rg = g0;
#if EDGEQ_VNNI
  // With several tokens, pairs of row groups share each activation broadcast (Tile2).
  // A single token stays on the 8-row tile: it is bound by reading the weights.
  for (; n_tok > 1 && rg + 1 < g1; rg += 2) {
    const uint8_t* o = packed + rg * gbytes;
    const int valid_b = static_cast<int>(std::min<int64_t>(kPackRows, rows - (rg + 1) * kPackRows));
    float* yr = y + rg * kPackRows;
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tok; t0 += 4) Tile2<4>(tr, o, o + gbytes, cols, a, t0, yr, y_stride, valid_b);
    switch (n_tok - t0) {
      case 3: Tile2<3>(tr, o, o + gbytes, cols, a, t0, yr, y_stride, valid_b); break;
      case 2: Tile2<2>(tr, o, o + gbytes, cols, a, t0, yr, y_stride, valid_b); break;
      case 1: Tile2<1>(tr, o, o + gbytes, cols, a, t0, yr, y_stride, valid_b); break;
      default: break;
    }
  }
#endif
  for (; rg < g1; ++rg) {
    const uint8_t* o = packed + rg * gbytes;
    const int valid = static_cast<int>(std::min<int64_t>(kPackRows, rows - rg * kPackRows));
    float* yr = y + rg * kPackRows;
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tok; t0 += 4) Tile<4>(tr, o, cols, a, t0, yr, y_stride, valid);
    switch (n_tok - t0) {
      case 3: Tile<3>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      case 2: Tile<2>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      case 1: Tile<1>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      default: break;
    }
  }
}

}  // namespace edgeq::EDGEQ_KNS
