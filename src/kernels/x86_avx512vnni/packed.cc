// AVX-512 VNNI kernels over the rows16-x86 packed layout (kernels/packed.h: 16 rows
// interleaved in 4-byte chunks, fp16 group scales, 64-byte aligned sub-blocks). One
// 512-bit register holds 4 consecutive weights of each of 16 rows; vpdpbusd against a
// broadcast 4-byte chunk of one token's activations multiplies, sums the 4 products and
// accumulates in int32 for 16 rows at once: lanes are rows, no horizontal sums, and no
// int16 intermediate (AVX2's pmaddubsw) to widen.
//
// Tiles are 16 rows x NT tokens (NT <= 8: 8 float accumulators + 8 int32 sums + the
// unpacked weights fit the 32 zmm registers). Each 64-byte weight vector is loaded and
// unpacked once per tile and used by every token of it. Decode is NT = 1.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_ps() inside _mm512_cvtepi32_ps/_mm512_cvtph_ps
// as "may be used uninitialized" (a false positive of the intrinsics headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/x86_tile_driver.h"

namespace edgeq::avx512vnni {

uint64_t PackedEqBytes16(EqType t, int64_t rows, int64_t cols) { return PackedEqBytes(kRows16X86, t, rows, cols); }

void PackEq16(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out) {
  PackEq(kRows16X86, t, w, row_bytes, rows, cols, out);
}

namespace {

constexpr int kRows = 16;

inline __m512i Bcast4(const int8_t* q) {
  int32_t v;
  std::memcpy(&v, q, 4);
  return _mm512_set1_epi32(v);
}

// Keeps GCC from reassociating a running integer sum into one long expression (all
// products live at once, spills); costs no instruction.
inline void Opaque(__m512i& v) { asm("" : "+v"(v)); }

inline void Store16(float* y, __m512 v, int valid) {
  if (valid == kRows) {
    _mm512_storeu_ps(y, v);
  } else {
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << valid) - 1), v);
  }
}

// w4, symmetric (value (nibble - 8) * d) or asymmetric (nibble * d + m), group g.
// Per 32-wide sub-block and token the integer part is exact: isum = sum nibble * q, and
// for symmetric weights the chain starts at -8 * s (s = sum q, QuantAct::s), so it ends
// at sum (nibble - 8) * q. The float work is then one convert and one fma per sub-block
// and token into a per-group sum g = sum_blocks d_a * isum, and one fma per weight group:
//   sym:  acc += d_w * g
//   asym: acc += d_w * g + m * C,  C = sum over the group's blocks of c = d_a * s.
// Decode (NT = 1) takes the high nibble as (byte & 0xF0) = 16 * nibble into a second
// chain (shifted right by 4 at the end, exactly): one instruction per vector instead of
// a shift and a mask, and two independent chains instead of one.
template <int NT, bool kAsym>
void TileW4(const uint8_t* o, const uint8_t* qs, int64_t nwb, int per, int64_t nb, const QuantAct& a, int64_t t0,
            float* y, int64_t y_stride, int valid) {
  const __m256i* d16 = reinterpret_cast<const __m256i*>(o);  // d[nwb][16], then m[nwb][16]
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const int64_t qstride = nb * kActBlock;
  const int8_t* q0 = a.q + t0 * qstride;
  const float* ad0 = a.d + t0 * nb;
  const float* ac0 = a.c + t0 * nb;
  const int32_t* as0 = a.s + t0 * nb;
  __m512 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  int64_t ab = 0;
  for (int64_t wb = 0; wb < nwb; ++wb) {
    const int64_t ab_begin = ab, ab_end = std::min<int64_t>(nb, ab + per);
    __m512 g[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) g[t] = _mm512_setzero_ps();
    for (; ab < ab_end; ++ab) {
      const uint8_t* blk = qs + ab * 256;
      x86_tiles::PrefetchWeights<NT>(blk, 4);
      if constexpr (NT == 1) {
        const int8_t* q = q0 + ab * kActBlock;
        __m512i lo = kAsym ? _mm512_setzero_si512() : _mm512_set1_epi32(-8 * as0[ab]);
        __m512i hi = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) {
          const __m512i raw = _mm512_loadu_si512(blk + m * 64);
          lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(raw, mask), Bcast4(q + 4 * m));
          hi = _mm512_dpbusd_epi32(hi, _mm512_andnot_si512(mask, raw), Bcast4(q + 16 + 4 * m));
          Opaque(lo);
          Opaque(hi);
        }
        const __m512i isum = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
        g[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(ad0[ab]), g[0]);
      } else {
        __m512i p[NT];
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) {
          const __m512i raw = _mm512_loadu_si512(blk + m * 64);
          const __m512i lo = _mm512_and_si512(raw, mask);                         // elements 4m..4m+3
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);  // elements 16+4m..
#pragma GCC unroll 8
          for (int t = 0; t < NT; ++t) {
            const int8_t* q = q0 + t * qstride + ab * kActBlock;
            if (m == 0) p[t] = kAsym ? _mm512_setzero_si512() : _mm512_set1_epi32(-8 * as0[t * nb + ab]);
            p[t] = _mm512_dpbusd_epi32(p[t], lo, Bcast4(q + 4 * m));
            p[t] = _mm512_dpbusd_epi32(p[t], hi, Bcast4(q + 16 + 4 * m));
            Opaque(p[t]);
          }
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          g[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p[t]), _mm512_set1_ps(ad0[t * nb + ab]), g[t]);
        }
      }
    }
    const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(d16 + wb));
    if constexpr (kAsym) {
      const __m512 wm = _mm512_cvtph_ps(_mm256_loadu_si256(d16 + nwb + wb));
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        float c = 0.0f;
        for (int64_t b = ab_begin; b < ab_end; ++b) c += ac0[t * nb + b];
        acc[t] = _mm512_fmadd_ps(wm, _mm512_set1_ps(c), _mm512_fmadd_ps(wd, g[t], acc[t]));
      }
    } else {
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(wd, g[t], acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) Store16(y + (t0 + t) * y_stride, acc[t], valid);
}

// w8c: signed int8 weights, one fp32 scale per row. vpdpbusd needs an unsigned operand:
// w + 128 (a xor of the sign bit) is in 1..255, and sum (w + 128) q = sum w q + 128 sum q,
// so the block's int32 sum of q (QuantAct::s) times 128 is subtracted, exactly.
template <int NT>
void TileW8(const uint8_t* o, const uint8_t* qs, int64_t nb, const QuantAct& a, int64_t t0, float* y,
            int64_t y_stride, int valid) {
  const __m512 scale = _mm512_loadu_ps(reinterpret_cast<const float*>(o));
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t qstride = nb * kActBlock;
  const int8_t* q0 = a.q + t0 * qstride;
  const float* ad0 = a.d + t0 * nb;
  const int32_t* as0 = a.s + t0 * nb;
  __m512 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t ab = 0; ab < nb; ++ab) {
    const uint8_t* blk = qs + ab * 512;
    x86_tiles::PrefetchWeights<NT>(blk, 8);
    __m512i isum[NT];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m512i wu = _mm512_xor_si512(_mm512_loadu_si512(blk + j * 64), bias);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = q0 + t * qstride + ab * kActBlock;
        isum[t] = _mm512_dpbusd_epi32(j == 0 ? _mm512_setzero_si512() : isum[t], wu, Bcast4(q + 4 * j));
        Opaque(isum[t]);
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512i exact = _mm512_sub_epi32(isum[t], _mm512_set1_epi32(128 * as0[t * nb + ab]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), _mm512_set1_ps(ad0[t * nb + ab]), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) Store16(y + (t0 + t) * y_stride, _mm512_mul_ps(acc[t], scale), valid);
}

EDGEQ_X86_TIER_TILES(TierTiles)  // TileW8 / TileW4 above, for x86_tile_driver.h

}  // namespace

void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  x86_tiles::GemmPackedTiles<TierTiles, 8>(kRows16X86, t, packed, rows, cols, g0, g1, a, n_tok, y, y_stride);
}

}  // namespace edgeq::avx512vnni
