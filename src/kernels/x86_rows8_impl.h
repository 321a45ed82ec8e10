// 256-bit kernels over the rows8-x86 packed layout (kernels/packed.h: 8 rows interleaved
// in 4-byte chunks, fp16 group scales, 64-byte aligned sub-blocks), included by the AVX2
// tier (EDGEQ_DPBUSD 0: pmaddubsw + pmaddwd) and the AVX-VNNI tier (EDGEQ_DPBUSD 1:
// vpdpbusd, which multiplies, sums 4 products and accumulates in int32 in one
// instruction). One 256-bit register holds 4 consecutive weights of each of 8 rows, so
// u8 x s8 products against a broadcast 4-byte chunk of one token's activations give 8
// row sums at once: lanes are rows, no horizontal sums.
//
// Tiles are 8 rows x NT tokens. The loop over the 4 packed vectors of a 32-wide sub-block
// is outside the loop over tokens, so only one unpacked weight pair is live and the int16
// partial sums and float accumulators of all NT tokens stay in registers (16 ymm: NT <= 4
// for w4, <= 4 for w8). Decode is NT = 1; prefill and batched decode reuse each unpacked
// weight vector for NT tokens.
// Define EDGEQ_KNS (the tier's namespace) and EDGEQ_DPBUSD before including.
#include <immintrin.h>

#include <algorithm>

#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/x86_tile_driver.h"

namespace edgeq::EDGEQ_KNS {

#if !EDGEQ_DPBUSD
// The layout's packing (one definition; the AVX-VNNI tier uses these too).
uint64_t PackedEqBytesX86(EqType t, int64_t rows, int64_t cols) { return PackedEqBytes(kRows8X86, t, rows, cols); }

void PackEqX86(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out) {
  PackEq(kRows8X86, t, w, row_bytes, rows, cols, out);
}
#endif

namespace {

// sum += u8 x s8 products of 4 adjacent bytes (int32 lanes). AVX2 has no such
// instruction: pmaddubsw to int16 pairs, then pmaddwd against ones.
inline __m256i DotU8S8(__m256i sum, __m256i u, __m256i s) {
#if EDGEQ_DPBUSD
  return _mm256_dpbusd_avx_epi32(sum, u, s);
#else
  return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

inline __m256i Bcast4(const int8_t* q) {
  int32_t v;
  __builtin_memcpy(&v, q, 4);
  return _mm256_set1_epi32(v);
}

// An empty asm that "changes" v: GCC's reassociation would otherwise collect a running
// integer sum's terms and add them all at the end, keeping every product live at once
// and spilling (16 ymm registers). Costs no instruction.
inline void Opaque(__m256i& v) { asm("" : "+x"(v)); }

inline void Store8(float* y, __m256 v, int valid) {
  if (valid == kPackRows) {
    _mm256_storeu_ps(y, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < valid; ++i) y[i] = tmp[i];
  }
}

// w4, symmetric (value (nibble - 8) * d) or asymmetric (nibble * d + m), group g.
// Per 32-wide sub-block and token: isum = sum nibble * q (int16 pair sums of at most
// 8 * 2 * 15 * 127 = 30480, widened once), then with c = d_a * sum q (QuantAct::c)
//   sym:  acc += d_w * d_a * isum - 8 * d_w * c
//   asym: acc += d_w * d_a * isum + m * c.
template <int NT, bool kAsym>
void TileW4(const uint8_t* o, const uint8_t* qs, int64_t nwb, int per, int64_t nb, const QuantAct& a, int64_t t0,
            float* y, int64_t y_stride, int valid) {
  const __m128i* d16 = reinterpret_cast<const __m128i*>(o);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);
  const int64_t qstride = nb * kActBlock;
  const int8_t* q0 = a.q + t0 * qstride;
  const float* ad0 = a.d + t0 * nb;
  const float* ac0 = a.c + t0 * nb;
  __m256 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  int64_t ab = 0;
  for (int64_t wb = 0; wb < nwb; ++wb) {
    const __m256 wd = _mm256_cvtph_ps(_mm_loadu_si128(d16 + wb));
    __m256 wm = _mm256_setzero_ps(), wd8 = _mm256_setzero_ps();
    if (kAsym) wm = _mm256_cvtph_ps(_mm_loadu_si128(d16 + nwb + wb));
    else wd8 = _mm256_mul_ps(wd, _mm256_set1_ps(8.0f));
    const int64_t ab_end = std::min<int64_t>(nb, ab + per);
    for (; ab < ab_end; ++ab) {
      const uint8_t* blk = qs + ab * 128;
      x86_tiles::PrefetchWeights<NT>(blk, 2);
      __m256i p[NT];
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + m * 32));
        const __m256i lo = _mm256_and_si256(raw, mask);                         // elements 4m..4m+3
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);  // elements 16+4m..
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const int8_t* q = q0 + t * qstride + ab * kActBlock;
#if EDGEQ_DPBUSD
          p[t] = _mm256_dpbusd_avx_epi32(m == 0 ? _mm256_setzero_si256() : p[t], lo, Bcast4(q + 4 * m));
          p[t] = _mm256_dpbusd_avx_epi32(p[t], hi, Bcast4(q + 16 + 4 * m));
#else
          const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, Bcast4(q + 4 * m)),
                                             _mm256_maddubs_epi16(hi, Bcast4(q + 16 + 4 * m)));
          p[t] = m == 0 ? s : _mm256_add_epi16(p[t], s);
#endif
          Opaque(p[t]);
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
#if EDGEQ_DPBUSD
        const __m256 f = _mm256_cvtepi32_ps(p[t]);
#else
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p[t], ones));
#endif
        const __m256 c = _mm256_broadcast_ss(ac0 + t * nb + ab);  // d_a * sum q
        acc[t] = _mm256_fmadd_ps(f, _mm256_mul_ps(wd, _mm256_broadcast_ss(ad0 + t * nb + ab)), acc[t]);
        // sym: - 8 d_w d_a sum q; asym: + m d_a sum q.
        acc[t] = kAsym ? _mm256_fmadd_ps(wm, c, acc[t]) : _mm256_fnmadd_ps(wd8, c, acc[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) Store8(y + (t0 + t) * y_stride, acc[t], valid);
}

// w8c: signed int8 weights, one fp32 scale per row. pmaddubsw needs an unsigned operand:
// |w| against sign(q, w) (w in -127..127: pair sums <= 2 * 127 * 127 fit in int16, but
// two of them do not, so each product is widened with pmaddwd before summing).
template <int NT>
void TileW8(const uint8_t* o, const uint8_t* qs, int64_t nb, const QuantAct& a, int64_t t0, float* y,
            int64_t y_stride, int valid) {
  const __m256 scale = _mm256_loadu_ps(reinterpret_cast<const float*>(o));
  const int64_t qstride = nb * kActBlock;
  const int8_t* q0 = a.q + t0 * qstride;
  const float* ad0 = a.d + t0 * nb;
  __m256 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ab = 0; ab < nb; ++ab) {
    const uint8_t* blk = qs + ab * 256;
    x86_tiles::PrefetchWeights<NT>(blk, 4);
    __m256i isum[NT];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + j * 32));
      const __m256i wabs = _mm256_sign_epi8(w, w);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = q0 + t * qstride + ab * kActBlock;
        isum[t] = DotU8S8(j == 0 ? _mm256_setzero_si256() : isum[t], wabs, _mm256_sign_epi8(Bcast4(q + 4 * j), w));
        Opaque(isum[t]);
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(ad0[t * nb + ab]), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) Store8(y + (t0 + t) * y_stride, _mm256_mul_ps(acc[t], scale), valid);
}

EDGEQ_X86_TIER_TILES(TierTiles)  // TileW8 / TileW4 above, for x86_tile_driver.h

}  // namespace

void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  x86_tiles::GemmPackedTiles<TierTiles, 4>(kRows8X86, t, packed, rows, cols, g0, g1, a, n_tok, y, y_stride);
}

}  // namespace edgeq::EDGEQ_KNS
