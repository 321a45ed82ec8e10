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
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

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

// Sub-block K of a decode tile's weight group (16 rows x 32 weights, the 256 bytes at
// blk + 256 K) into the group's sum g: g += d * isum, isum = sum nibble * q (symmetric:
// - 8 * s, exactly, in int32). In assembly because the compiler's version of the same
// intrinsics loaded every weight line twice (an and-with-memory per nibble half), kept
// the activation broadcasts as separate instructions instead of vpdpbusd's embedded
// {1to16} broadcast, and copied the chains between registers around the barrier that
// keeps them apart: ~48 instructions per sub-block where this takes 30. Decode streams
// the weights from DRAM, and the fewer instructions wait behind the loads, the more
// loads the core keeps in flight. 2-core Xeon, interleaved runs: a streaming harness
// (5632x2048 tiles, 1 GiB a pass) went from 15.1 to 15.8 GB/s on 1 thread (a plain read:
// 17.3) and 27.6 -> 28.9 on 2 (31.3); tinyllama w4a8-g128 decode (with DecodeBlockW8 for
// its classifier) from 79% to 82% of the bandwidth measured seconds before (medians of 5).
#define EDGEQ_W4_DECODE_BODY                                  \
  "vpxord %[lo], %[lo], %[lo]\n\t"                           \
  "vpxord %[hi], %[hi], %[hi]\n\t"                           \
  "vmovdqu64 %c[ob](%[b]), %[w0]\n\t"                        \
  "vmovdqu64 %c[ob]+64(%[b]), %[w1]\n\t"                     \
  "vpandd %[w0], %[m], %[nl]\n\t"                            \
  "vpandnd %[w0], %[m], %[nh]\n\t"                           \
  "vpdpbusd %c[oq](%[q])%{1to16%}, %[nl], %[lo]\n\t"         \
  "vpdpbusd %c[oq]+16(%[q])%{1to16%}, %[nh], %[hi]\n\t"      \
  "vpandd %[w1], %[m], %[nl]\n\t"                            \
  "vpandnd %[w1], %[m], %[nh]\n\t"                           \
  "vmovdqu64 %c[ob]+128(%[b]), %[w0]\n\t"                    \
  "vmovdqu64 %c[ob]+192(%[b]), %[w1]\n\t"                    \
  "vpdpbusd %c[oq]+4(%[q])%{1to16%}, %[nl], %[lo]\n\t"       \
  "vpdpbusd %c[oq]+20(%[q])%{1to16%}, %[nh], %[hi]\n\t"      \
  "vpandd %[w0], %[m], %[nl]\n\t"                            \
  "vpandnd %[w0], %[m], %[nh]\n\t"                           \
  "vpdpbusd %c[oq]+8(%[q])%{1to16%}, %[nl], %[lo]\n\t"       \
  "vpdpbusd %c[oq]+24(%[q])%{1to16%}, %[nh], %[hi]\n\t"      \
  "vpandd %[w1], %[m], %[nl]\n\t"                            \
  "vpandnd %[w1], %[m], %[nh]\n\t"                           \
  "vpdpbusd %c[oq]+12(%[q])%{1to16%}, %[nl], %[lo]\n\t"      \
  "vpdpbusd %c[oq]+28(%[q])%{1to16%}, %[nh], %[hi]\n\t"      \
  "vpsrad $4, %[hi], %[hi]\n\t" /* 16 * products: exact */  \
  "vpaddd %[hi], %[lo], %[lo]\n\t"
#define EDGEQ_W4_DECODE_END                                   \
  "vcvtdq2ps %[lo], %[lo]\n\t"                               \
  "vfmadd231ps %c[od](%[d])%{1to16%}, %[lo], %[g]\n\t"

template <bool kSym, int K>
inline __m512 DecodeBlockW4(const uint8_t* blk, const int8_t* q, const float* d, const int32_t* s, __m512i mask,
                            __m512 g) {
  __m512i lo, hi, w0, w1, nl, nh;
  if constexpr (kSym) {
    asm(EDGEQ_W4_DECODE_BODY
        "vpbroadcastd %c[od](%[s]), %[w0]\n\t"
        "vpslld $3, %[w0], %[w0]\n\t"
        "vpsubd %[w0], %[lo], %[lo]\n\t"
        EDGEQ_W4_DECODE_END
        : [lo] "=&v"(lo), [hi] "=&v"(hi), [w0] "=&v"(w0), [w1] "=&v"(w1), [nl] "=&v"(nl), [nh] "=&v"(nh), [g] "+v"(g)
        : [b] "r"(blk), [q] "r"(q), [d] "r"(d), [s] "r"(s), [m] "v"(mask), [ob] "i"(256 * K),
          [oq] "i"(kActBlock * K), [od] "i"(4 * K)
        : "memory");
  } else {
    asm(EDGEQ_W4_DECODE_BODY EDGEQ_W4_DECODE_END
        : [lo] "=&v"(lo), [hi] "=&v"(hi), [w0] "=&v"(w0), [w1] "=&v"(w1), [nl] "=&v"(nl), [nh] "=&v"(nh), [g] "+v"(g)
        : [b] "r"(blk), [q] "r"(q), [d] "r"(d), [m] "v"(mask), [ob] "i"(256 * K), [oq] "i"(kActBlock * K),
          [od] "i"(4 * K)
        : "memory");
    (void)s;
  }
  return g;
}
#undef EDGEQ_W4_DECODE_BODY
#undef EDGEQ_W4_DECODE_END

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
    if constexpr (NT == 1) {
      if (ab_end - ab == 4) {  // groups of 128 (4 sub-blocks), unrolled: constant offsets
        const uint8_t* blk = qs + ab * 256;
        const int8_t* q = q0 + ab * kActBlock;
        x86_tiles::PrefetchWeights<1>(blk, 4);
        g[0] = DecodeBlockW4<!kAsym, 0>(blk, q, ad0 + ab, as0 + ab, mask, g[0]);
        x86_tiles::PrefetchWeights<1>(blk + 256, 4);
        g[0] = DecodeBlockW4<!kAsym, 1>(blk, q, ad0 + ab, as0 + ab, mask, g[0]);
        x86_tiles::PrefetchWeights<1>(blk + 512, 4);
        g[0] = DecodeBlockW4<!kAsym, 2>(blk, q, ad0 + ab, as0 + ab, mask, g[0]);
        x86_tiles::PrefetchWeights<1>(blk + 768, 4);
        g[0] = DecodeBlockW4<!kAsym, 3>(blk, q, ad0 + ab, as0 + ab, mask, g[0]);
        ab = ab_end;
      }
    }
    for (; ab < ab_end; ++ab) {
      const uint8_t* blk = qs + ab * 256;
      x86_tiles::PrefetchWeights<NT>(blk, 4);
      if constexpr (NT == 1) {
        g[0] = DecodeBlockW4<!kAsym, 0>(blk, q0 + ab * kActBlock, ad0 + ab, as0 + ab, mask, g[0]);
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

// One 32-wide sub-block of a w8c decode tile (16 rows x 32 weights, 512 bytes at blk)
// into acc: acc += d * (sum (w + 128) q - 128 s), in assembly for the reasons of
// DecodeBlockW4: the bias xor takes the weight load as its memory operand, vpdpbusd
// broadcasts the activations itself, and two chains of 4 halve the dependency chain.
inline __m512 DecodeBlockW8(const uint8_t* blk, const int8_t* q, const float* d, const int32_t* s, __m512i bias,
                            __m512 acc) {
  __m512i lo, hi, w0, w1;
  asm("vpxord %[lo], %[lo], %[lo]\n\t"
      "vpxord %[hi], %[hi], %[hi]\n\t"
      "vpxord (%[b]), %[k], %[w0]\n\t"
      "vpxord 64(%[b]), %[k], %[w1]\n\t"
      "vpdpbusd (%[q])%{1to16%}, %[w0], %[lo]\n\t"
      "vpdpbusd 4(%[q])%{1to16%}, %[w1], %[hi]\n\t"
      "vpxord 128(%[b]), %[k], %[w0]\n\t"
      "vpxord 192(%[b]), %[k], %[w1]\n\t"
      "vpdpbusd 8(%[q])%{1to16%}, %[w0], %[lo]\n\t"
      "vpdpbusd 12(%[q])%{1to16%}, %[w1], %[hi]\n\t"
      "vpxord 256(%[b]), %[k], %[w0]\n\t"
      "vpxord 320(%[b]), %[k], %[w1]\n\t"
      "vpdpbusd 16(%[q])%{1to16%}, %[w0], %[lo]\n\t"
      "vpdpbusd 20(%[q])%{1to16%}, %[w1], %[hi]\n\t"
      "vpxord 384(%[b]), %[k], %[w0]\n\t"
      "vpxord 448(%[b]), %[k], %[w1]\n\t"
      "vpdpbusd 24(%[q])%{1to16%}, %[w0], %[lo]\n\t"
      "vpdpbusd 28(%[q])%{1to16%}, %[w1], %[hi]\n\t"
      "vpaddd %[hi], %[lo], %[lo]\n\t"
      "vpbroadcastd (%[s]), %[w0]\n\t"
      "vpslld $7, %[w0], %[w0]\n\t"
      "vpsubd %[w0], %[lo], %[lo]\n\t"
      "vcvtdq2ps %[lo], %[lo]\n\t"
      "vfmadd231ps (%[d])%{1to16%}, %[lo], %[acc]\n\t"
      : [lo] "=&v"(lo), [hi] "=&v"(hi), [w0] "=&v"(w0), [w1] "=&v"(w1), [acc] "+v"(acc)
      : [b] "r"(blk), [q] "r"(q), [d] "r"(d), [s] "r"(s), [k] "v"(bias)
      : "memory");
  return acc;
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
    if constexpr (NT == 1) {
      acc[0] = DecodeBlockW8(blk, q0 + ab * kActBlock, ad0 + ab, as0 + ab, bias, acc[0]);
      continue;
    }
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
