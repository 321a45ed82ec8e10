// Body of the ARM64 packed-layout integer kernels (W8 per-channel and W4 per-group x A8)
// over the generic rows8 layout (kernels/packed.h, fp32 scales), included by
// arm_neon/packed.cc, arm_neon_dotprod/packed.cc and arm_i8mm/packed.cc. The includer
// defines EDGEQ_KNS (namespace), EDGEQ_DOTPROD (1: sdot) and EDGEQ_I8MM (1: smmla for
// pairs of tokens).
//
// rows8 on NEON: a 32-byte vector V_j of a sub-block (element 4j..4j+3 of rows 0..7) is
// two q registers, rows 0..3 and rows 4..7, one row per 32-bit lane. `sdot by element`
// (vdotq_laneq_s32) multiplies each lane's 4 weights by one 4-byte chunk of the
// activation held in a lane of a q register: the broadcast costs nothing, 16 sdot give
// the 8 rows' sums of a 32-element block. Without dotprod (tier `neon`) the same lane
// product is vmull_s8 + vmull_high_s8 + vpaddq_s16 + vpadalq_s16 (|w|,|q| <= 128 and
// two products fit in int16). Nibbles (0..15) are valid signed int8 weights, so W4 uses
// the same signed dot product and subtracts 8 * sum(q) (symmetric) or adds m * d * sum(q)
// (asymmetric) per block, exactly as the generic kernel: the integer block sums are
// identical to generic's, only the float accumulation order differs.
//
// i8mm (smmla, vmmlaq_s32): C(2x2) += A(2x8) . B(2x8)^T with A = 8 consecutive weights
// of two rows and B = 8 consecutive activations of two tokens. rows8 holds 4
// consecutive weights per row and vector; zip1/zip2 of the 32-bit lanes of V_2c and
// V_2c+1 give [row r: 8c..8c+7 | row r+1: 8c..8c+7], so the same packed bytes serve
// (one zip per 16 weight bytes per block, shared by all token pairs of a tile). A
// 32-element block of 8 rows x 2 tokens is 16 smmla (512 multiply-adds) against 32 sdot
// for the same work. Tokens are taken in pairs; an odd last token and decode (1 token)
// use the sdot tile.
#include <arm_neon.h>

#include <algorithm>

#include "kernels/packed.h"

namespace edgeq::EDGEQ_KNS {
namespace {

template <int L>
inline int32x4_t DotLane(int32x4_t acc, int8x16_t w, int8x16_t q) {
#if EDGEQ_DOTPROD
  return vdotq_laneq_s32(acc, w, q, L);
#else
  const int8x16_t b = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(q), L));
  const int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(b));
  const int16x8_t hi = vmull_high_s8(w, b);
  return vpadalq_s16(acc, vpaddq_s16(lo, hi));
#endif
}

// Rows 0..3 (lo) and 4..7 (hi) of sum_j V_j . q[4j..4j+3] for one 32-element block.
inline void Dot8(const int8x16_t* vlo, const int8x16_t* vhi, const int8_t* q, int32x4_t* lo, int32x4_t* hi) {
  const int8x16_t q0 = vld1q_s8(q), q1 = vld1q_s8(q + 16);
  const int32x4_t z = vdupq_n_s32(0);
  // Two chains per half: independent accumulators hide the sdot latency.
  int32x4_t a0 = DotLane<0>(z, vlo[0], q0), b0 = DotLane<0>(z, vhi[0], q0);
  int32x4_t a1 = DotLane<1>(z, vlo[1], q0), b1 = DotLane<1>(z, vhi[1], q0);
  a0 = DotLane<2>(a0, vlo[2], q0);
  b0 = DotLane<2>(b0, vhi[2], q0);
  a1 = DotLane<3>(a1, vlo[3], q0);
  b1 = DotLane<3>(b1, vhi[3], q0);
  a0 = DotLane<0>(a0, vlo[4], q1);
  b0 = DotLane<0>(b0, vhi[4], q1);
  a1 = DotLane<1>(a1, vlo[5], q1);
  b1 = DotLane<1>(b1, vhi[5], q1);
  a0 = DotLane<2>(a0, vlo[6], q1);
  b0 = DotLane<2>(b0, vhi[6], q1);
  a1 = DotLane<3>(a1, vlo[7], q1);
  b1 = DotLane<3>(b1, vhi[7], q1);
  *lo = vaddq_s32(a0, a1);
  *hi = vaddq_s32(b0, b1);
}

inline void Store8(float* y, float32x4_t lo, float32x4_t hi, int valid) {
  if (valid == kPackRows) {
    vst1q_f32(y, lo);
    vst1q_f32(y + 4, hi);
  } else {
    float tmp[8];
    vst1q_f32(tmp, lo);
    vst1q_f32(tmp + 4, hi);
    for (int i = 0; i < valid; ++i) y[i] = tmp[i];
  }
}

// Unpacks the 8 vectors (two halves each) of w4 sub-block `p` (128 bytes).
inline void UnpackW4(const uint8_t* p, int8x16_t* vlo, int8x16_t* vhi) {
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  for (int m = 0; m < 4; ++m) {
    const uint8x16_t l = vld1q_u8(p + m * 32), h = vld1q_u8(p + m * 32 + 16);
    vlo[m] = vreinterpretq_s8_u8(vandq_u8(l, mask));
    vhi[m] = vreinterpretq_s8_u8(vandq_u8(h, mask));
    vlo[m + 4] = vreinterpretq_s8_u8(vshrq_n_u8(l, 4));
    vhi[m + 4] = vreinterpretq_s8_u8(vshrq_n_u8(h, 4));
  }
}

inline void LoadW8(const uint8_t* p, int8x16_t* vlo, int8x16_t* vhi) {
  for (int j = 0; j < 8; ++j) {
    vlo[j] = vld1q_s8(reinterpret_cast<const int8_t*>(p + j * 32));
    vhi[j] = vld1q_s8(reinterpret_cast<const int8_t*>(p + j * 32 + 16));
  }
}

// One row group x NT tokens starting at t0 (sdot / NEON lane products).
template <int NT>
void TileW4(const uint8_t* o, int64_t cols, int g, bool asym, const QuantAct& a, int64_t t0, float* y,
            int64_t y_stride, int valid) {
  const int per = g / kActBlock;
  const int64_t nwb = (cols + g - 1) / g, nb = a.nb;
  const float* d = reinterpret_cast<const float*>(o);
  const float* m = asym ? d + nwb * kPackRows : nullptr;
  const uint8_t* qs = o + nwb * kPackRows * 4 * (asym ? 2 : 1);
  float32x4_t acc_lo[NT], acc_hi[NT];
  for (int t = 0; t < NT; ++t) acc_lo[t] = acc_hi[t] = vdupq_n_f32(0.0f);
  int64_t wb = 0;
  int k_in_block = 0;
  for (int64_t ab = 0; ab < nb; ++ab) {
    __builtin_prefetch(qs + ab * 128 + 1024);
    __builtin_prefetch(qs + ab * 128 + 1088);
    const float32x4_t wd_lo = vld1q_f32(d + wb * kPackRows), wd_hi = vld1q_f32(d + wb * kPackRows + 4);
    int8x16_t vlo[8], vhi[8];
    UnpackW4(qs + ab * 128, vlo, vhi);
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      const float ad = a.d[tok * nb + ab];
      int32x4_t ilo, ihi;
      Dot8(vlo, vhi, a.q + (tok * nb + ab) * kActBlock, &ilo, &ihi);
      if (asym) {
        const float c = a.c[tok * nb + ab];
        acc_lo[t] = vfmaq_f32(acc_lo[t], vcvtq_f32_s32(ilo), vmulq_n_f32(wd_lo, ad));
        acc_hi[t] = vfmaq_f32(acc_hi[t], vcvtq_f32_s32(ihi), vmulq_n_f32(wd_hi, ad));
        acc_lo[t] = vfmaq_n_f32(acc_lo[t], vld1q_f32(m + wb * kPackRows), c);
        acc_hi[t] = vfmaq_n_f32(acc_hi[t], vld1q_f32(m + wb * kPackRows + 4), c);
      } else {
        const int32x4_t corr = vdupq_n_s32(8 * a.s[tok * nb + ab]);
        acc_lo[t] = vfmaq_f32(acc_lo[t], vcvtq_f32_s32(vsubq_s32(ilo, corr)), vmulq_n_f32(wd_lo, ad));
        acc_hi[t] = vfmaq_f32(acc_hi[t], vcvtq_f32_s32(vsubq_s32(ihi, corr)), vmulq_n_f32(wd_hi, ad));
      }
    }
    if (++k_in_block == per) {
      k_in_block = 0;
      ++wb;
    }
  }
  for (int t = 0; t < NT; ++t) Store8(y + (t0 + t) * y_stride, acc_lo[t], acc_hi[t], valid);
}

template <int NT>
void TileW8(const uint8_t* o, const QuantAct& a, int64_t t0, float* y, int64_t y_stride, int valid) {
  const int64_t nb = a.nb;
  const float* scale = reinterpret_cast<const float*>(o);
  const uint8_t* qs = o + 4 * kPackRows;
  float32x4_t acc_lo[NT], acc_hi[NT];
  for (int t = 0; t < NT; ++t) acc_lo[t] = acc_hi[t] = vdupq_n_f32(0.0f);
  for (int64_t ab = 0; ab < nb; ++ab) {
    __builtin_prefetch(qs + ab * 256 + 2048);
    __builtin_prefetch(qs + ab * 256 + 2112);
    __builtin_prefetch(qs + ab * 256 + 2176);
    __builtin_prefetch(qs + ab * 256 + 2240);
    int8x16_t vlo[8], vhi[8];
    LoadW8(qs + ab * 256, vlo, vhi);
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      int32x4_t ilo, ihi;
      Dot8(vlo, vhi, a.q + (tok * nb + ab) * kActBlock, &ilo, &ihi);
      const float ad = a.d[tok * nb + ab];
      acc_lo[t] = vfmaq_n_f32(acc_lo[t], vcvtq_f32_s32(ilo), ad);
      acc_hi[t] = vfmaq_n_f32(acc_hi[t], vcvtq_f32_s32(ihi), ad);
    }
  }
  const float32x4_t s_lo = vld1q_f32(scale), s_hi = vld1q_f32(scale + 4);
  for (int t = 0; t < NT; ++t) {
    Store8(y + (t0 + t) * y_stride, vmulq_f32(acc_lo[t], s_lo), vmulq_f32(acc_hi[t], s_hi), valid);
  }
}

template <int NT>
void Tile(const EqTypeTraits& tr, const uint8_t* o, int64_t cols, const QuantAct& a, int64_t t0, float* y,
          int64_t y_stride, int valid) {
  if (tr.group == 0) TileW8<NT>(o, a, t0, y, y_stride, valid);
  else TileW4<NT>(o, cols, tr.group, tr.asymmetric, a, t0, y, y_stride, valid);
}

#if EDGEQ_I8MM
// [x0, x0, x1, x1] and [x2, x2, x3, x3] of four per-row values (the 2x2 C layout is
// [row r tok t, row r tok t+1, row r+1 tok t, row r+1 tok t+1]).
inline void PairUp(const float* x, float32x4_t* out) {
  const float32x4_t lo = vld1q_f32(x), hi = vld1q_f32(x + 4);
  out[0] = vzip1q_f32(lo, lo);
  out[1] = vzip2q_f32(lo, lo);
  out[2] = vzip1q_f32(hi, hi);
  out[3] = vzip2q_f32(hi, hi);
}

// smmla operands of one block: W[c][p] = [row 2p: 8c..8c+7 | row 2p+1: 8c..8c+7] from the
// rows8 vectors V_2c, V_2c+1 (rows 0..3 in vlo, 4..7 in vhi).
inline void ZipPairs(const int8x16_t* vlo, const int8x16_t* vhi, int8x16_t w[4][4]) {
  for (int c = 0; c < 4; ++c) {
    const int32x4_t l0 = vreinterpretq_s32_s8(vlo[2 * c]), l1 = vreinterpretq_s32_s8(vlo[2 * c + 1]);
    const int32x4_t h0 = vreinterpretq_s32_s8(vhi[2 * c]), h1 = vreinterpretq_s32_s8(vhi[2 * c + 1]);
    w[c][0] = vreinterpretq_s8_s32(vzip1q_s32(l0, l1));
    w[c][1] = vreinterpretq_s8_s32(vzip2q_s32(l0, l1));
    w[c][2] = vreinterpretq_s8_s32(vzip1q_s32(h0, h1));
    w[c][3] = vreinterpretq_s8_s32(vzip2q_s32(h0, h1));
  }
}

// C[p] for rows 2p, 2p+1 x tokens t, t+1: the 32-element block's integer sums.
inline void Mm8x2(int8x16_t w[4][4], const int8_t* qa, const int8_t* qb, int32x4_t* c) {
  int8x16_t b[4];
  for (int k = 0; k < 4; ++k) b[k] = vcombine_s8(vld1_s8(qa + 8 * k), vld1_s8(qb + 8 * k));
  for (int p = 0; p < 4; ++p) {
    int32x4_t x = vmmlaq_s32(vdupq_n_s32(0), w[0][p], b[0]);
    int32x4_t z = vmmlaq_s32(vdupq_n_s32(0), w[1][p], b[1]);
    x = vmmlaq_s32(x, w[2][p], b[2]);
    z = vmmlaq_s32(z, w[3][p], b[3]);
    c[p] = vaddq_s32(x, z);
  }
}

// Rows 0..3 and 4..7 of tokens t and t+1 from the per-pair accumulators.
inline void StorePairs(const float32x4_t* acc, float* y0, float* y1, int valid) {
  Store8(y0, vuzp1q_f32(acc[0], acc[1]), vuzp1q_f32(acc[2], acc[3]), valid);
  Store8(y1, vuzp2q_f32(acc[0], acc[1]), vuzp2q_f32(acc[2], acc[3]), valid);
}

// One row group x NP pairs of tokens starting at t0.
template <int NP>
void MmTileW4(const uint8_t* o, int64_t cols, int g, bool asym, const QuantAct& a, int64_t t0, float* y,
              int64_t y_stride, int valid) {
  const int per = g / kActBlock;
  const int64_t nwb = (cols + g - 1) / g, nb = a.nb;
  const float* d = reinterpret_cast<const float*>(o);
  const float* m = asym ? d + nwb * kPackRows : nullptr;
  const uint8_t* qs = o + nwb * kPackRows * 4 * (asym ? 2 : 1);
  float32x4_t acc[NP][4];
  for (int t = 0; t < NP; ++t)
    for (int p = 0; p < 4; ++p) acc[t][p] = vdupq_n_f32(0.0f);
  int64_t wb = 0;
  int k_in_block = 0;
  float32x4_t wd[4], wm[4];
  PairUp(d, wd);
  if (asym) PairUp(m, wm);
  for (int64_t ab = 0; ab < nb; ++ab) {
    __builtin_prefetch(qs + ab * 128 + 1024);
    __builtin_prefetch(qs + ab * 128 + 1088);
    int8x16_t vlo[8], vhi[8], w[4][4];
    UnpackW4(qs + ab * 128, vlo, vhi);
    ZipPairs(vlo, vhi, w);
    for (int t = 0; t < NP; ++t) {
      const int64_t ta = t0 + 2 * t, tb = ta + 1;
      int32x4_t c[4];
      Mm8x2(w, a.q + (ta * nb + ab) * kActBlock, a.q + (tb * nb + ab) * kActBlock, c);
      const float ada = a.d[ta * nb + ab], adb = a.d[tb * nb + ab];
      const float32x4_t ad = {ada, adb, ada, adb};
      if (asym) {
        const float32x4_t cs = {a.c[ta * nb + ab], a.c[tb * nb + ab], a.c[ta * nb + ab], a.c[tb * nb + ab]};
        for (int p = 0; p < 4; ++p) {
          acc[t][p] = vfmaq_f32(acc[t][p], vcvtq_f32_s32(c[p]), vmulq_f32(wd[p], ad));
          acc[t][p] = vfmaq_f32(acc[t][p], wm[p], cs);
        }
      } else {
        const int32x4_t corr = {8 * a.s[ta * nb + ab], 8 * a.s[tb * nb + ab], 8 * a.s[ta * nb + ab],
                                8 * a.s[tb * nb + ab]};
        for (int p = 0; p < 4; ++p) {
          acc[t][p] = vfmaq_f32(acc[t][p], vcvtq_f32_s32(vsubq_s32(c[p], corr)), vmulq_f32(wd[p], ad));
        }
      }
    }
    if (++k_in_block == per) {
      k_in_block = 0;
      ++wb;
      if (wb < nwb) {
        PairUp(d + wb * kPackRows, wd);
        if (asym) PairUp(m + wb * kPackRows, wm);
      }
    }
  }
  for (int t = 0; t < NP; ++t) StorePairs(acc[t], y + (t0 + 2 * t) * y_stride, y + (t0 + 2 * t + 1) * y_stride, valid);
}

template <int NP>
void MmTileW8(const uint8_t* o, const QuantAct& a, int64_t t0, float* y, int64_t y_stride, int valid) {
  const int64_t nb = a.nb;
  const uint8_t* qs = o + 4 * kPackRows;
  float32x4_t acc[NP][4];
  for (int t = 0; t < NP; ++t)
    for (int p = 0; p < 4; ++p) acc[t][p] = vdupq_n_f32(0.0f);
  for (int64_t ab = 0; ab < nb; ++ab) {
    __builtin_prefetch(qs + ab * 256 + 2048);
    __builtin_prefetch(qs + ab * 256 + 2112);
    __builtin_prefetch(qs + ab * 256 + 2176);
    __builtin_prefetch(qs + ab * 256 + 2240);
    int8x16_t vlo[8], vhi[8], w[4][4];
    LoadW8(qs + ab * 256, vlo, vhi);
    ZipPairs(vlo, vhi, w);
    for (int t = 0; t < NP; ++t) {
      const int64_t ta = t0 + 2 * t, tb = ta + 1;
      int32x4_t c[4];
      Mm8x2(w, a.q + (ta * nb + ab) * kActBlock, a.q + (tb * nb + ab) * kActBlock, c);
      const float ada = a.d[ta * nb + ab], adb = a.d[tb * nb + ab];
      const float32x4_t ad = {ada, adb, ada, adb};
      for (int p = 0; p < 4; ++p) acc[t][p] = vfmaq_f32(acc[t][p], vcvtq_f32_s32(c[p]), ad);
    }
  }
  float32x4_t sc[4];
  PairUp(reinterpret_cast<const float*>(o), sc);
  for (int t = 0; t < NP; ++t) {
    for (int p = 0; p < 4; ++p) acc[t][p] = vmulq_f32(acc[t][p], sc[p]);
    StorePairs(acc[t], y + (t0 + 2 * t) * y_stride, y + (t0 + 2 * t + 1) * y_stride, valid);
  }
}

template <int NP>
void MmTile(const EqTypeTraits& tr, const uint8_t* o, int64_t cols, const QuantAct& a, int64_t t0, float* y,
            int64_t y_stride, int valid) {
  if (tr.group == 0) MmTileW8<NP>(o, a, t0, y, y_stride, valid);
  else MmTileW4<NP>(o, cols, tr.group, tr.asymmetric, a, t0, y, y_stride, valid);
}
#endif  // EDGEQ_I8MM

}  // namespace

void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const uint64_t gbytes = PackedGroupBytes(t, cols);
  for (int64_t rg = g0; rg < g1; ++rg) {
    const uint8_t* o = packed + rg * gbytes;
    const int valid = static_cast<int>(std::min<int64_t>(kPackRows, rows - rg * kPackRows));
    float* yr = y + rg * kPackRows;
    int64_t t0 = 0;
#if EDGEQ_I8MM
    for (; t0 + 4 <= n_tok; t0 += 4) MmTile<2>(tr, o, cols, a, t0, yr, y_stride, valid);
    if (t0 + 2 <= n_tok) {
      MmTile<1>(tr, o, cols, a, t0, yr, y_stride, valid);
      t0 += 2;
    }
    if (t0 < n_tok) Tile<1>(tr, o, cols, a, t0, yr, y_stride, valid);
#else
    for (; t0 + 4 <= n_tok; t0 += 4) Tile<4>(tr, o, cols, a, t0, yr, y_stride, valid);
    switch (n_tok - t0) {
      case 3: Tile<3>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      case 2: Tile<2>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      case 1: Tile<1>(tr, o, cols, a, t0, yr, y_stride, valid); break;
      default: break;
    }
#endif
  }
}

}  // namespace edgeq::EDGEQ_KNS
