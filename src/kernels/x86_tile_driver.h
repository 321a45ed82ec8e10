// The loops the x86 packed tiers share (AVX2 / AVX-VNNI over rows8-x86, AVX-512 VNNI over
// rows16-x86; kernels/packed.h): one tile of NT tokens goes to the tier's W8 (per-row
// scale) or W4 (per-group, symmetric or asymmetric) kernel, and GemmPackedTiles walks
// the row groups [g0, g1) in tiles of kMaxNT tokens, then one tile of the rest. The
// tiles' software prefetch of their weights is here too (PrefetchWeights).
//
// K supplies the tier's tile kernels as static member templates (a tier whose kernels are
// function templates TileW8<NT> and TileW4<NT, kAsym> with these parameters declares K
// with EDGEQ_X86_TIER_TILES(Name) after them):
//   template <int NT> static void W8(o, qs, nb, a, t0, y, y_stride, valid);
//   template <int NT, bool kAsym> static void W4(o, qs, nwb, per, nb, a, t0, y, y_stride, valid);
// (o: the row group, qs: its codes after the scale region, nwb: weight groups per row,
// per: activation blocks per weight group, valid: rows of this group that exist).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "format/eq_types.h"
#include "kernels/packed.h"
#include "kernels/quant_act.h"

#define EDGEQ_X86_TIER_TILES(Name)                                                                             \
  struct Name {                                                                                               \
    template <int NT>                                                                                         \
    static void W8(const uint8_t* o, const uint8_t* qs, int64_t nb, const QuantAct& a, int64_t t0, float* y,  \
                   int64_t y_stride, int valid) {                                                             \
      TileW8<NT>(o, qs, nb, a, t0, y, y_stride, valid);                                                       \
    }                                                                                                         \
    template <int NT, bool kAsym>                                                                             \
    static void W4(const uint8_t* o, const uint8_t* qs, int64_t nwb, int per, int64_t nb, const QuantAct& a,  \
                   int64_t t0, float* y, int64_t y_stride, int valid) {                                       \
      TileW4<NT, kAsym>(o, qs, nwb, per, nb, a, t0, y, y_stride, valid);                                      \
    }                                                                                                         \
  };

namespace edgeq::x86_tiles {

// Software prefetch of a tile's next weights: the `lines` cache lines of the sub-block
// at blk, asked for ahead of their use (both x86 layouts; kernels/packed.h). Decode
// (NT = 1) streams weights from DRAM with little work per byte: 8 KiB ahead into L2
// (prefetcht1), since an L1 prefetch holds one of the core's few fill buffers until its
// line arrives. On a 2-core Xeon, tinyllama w4a8-g128 decode, against L1 prefetches 1-2
// KiB ahead: AVX-512 tier 42.7 -> 45.2 t/s (with that tier's other changes of the same
// commit), AVX2 tier forced 35.3 -> 42.2, AVX-VNNI 35.0 -> 41.3 (w8a8 on AVX2 22.1 ->
// 25.5; medians of interleaved runs); a cache-resident model lost ~3% on AVX2 (stories15m
// decode, whose 9 MB classifier streams from L3). Not measured on an AMD CPU. Prefill
// tiles reuse each line for NT tokens: 8 sub-blocks ahead into L1.
template <int NT>
inline void PrefetchWeights(const uint8_t* blk, int lines) {
  if constexpr (NT == 1) {
#pragma GCC unroll 8
    for (int l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + 8192 + 64 * l), _MM_HINT_T1);
  } else {
    for (int l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + 512 * lines + 64 * l), _MM_HINT_T0);
  }
}


template <class K, int NT>
inline void Tile(const EqTypeTraits& tr, const uint8_t* o, uint64_t sbytes, int64_t cols, const QuantAct& a,
                 int64_t t0, float* y, int64_t y_stride, int valid) {
  const uint8_t* qs = o + sbytes;
  if (tr.group == 0) {
    K::template W8<NT>(o, qs, a.nb, a, t0, y, y_stride, valid);
    return;
  }
  const int64_t nwb = (cols + tr.group - 1) / tr.group;
  const int per = tr.group / kActBlock;
  if (tr.asymmetric) K::template W4<NT, true>(o, qs, nwb, per, a.nb, a, t0, y, y_stride, valid);
  else K::template W4<NT, false>(o, qs, nwb, per, a.nb, a, t0, y, y_stride, valid);
}

// One tile of `rest` tokens (0 < rest <= N), with NT known at compile time.
template <class K, int N>
inline void TileRest(int rest, const EqTypeTraits& tr, const uint8_t* o, uint64_t sbytes, int64_t cols,
                     const QuantAct& a, int64_t t0, float* y, int64_t y_stride, int valid) {
  if constexpr (N > 0) {
    if (rest == N) Tile<K, N>(tr, o, sbytes, cols, a, t0, y, y_stride, valid);
    else TileRest<K, N - 1>(rest, tr, o, sbytes, cols, a, t0, y, y_stride, valid);
  }
}

template <class K, int kMaxNT>
inline void GemmPackedTiles(const PackLayout& layout, EqType t, const uint8_t* packed, int64_t rows, int64_t cols,
                            int64_t g0, int64_t g1, const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const uint64_t gbytes = PackedGroupBytes(layout, t, cols);
  const uint64_t sbytes = PackedScaleBytes(layout, t, cols);
  const int64_t R = layout.rows;
  for (int64_t rg = g0; rg < g1; ++rg) {
    const uint8_t* o = packed + rg * gbytes;
    const int valid = static_cast<int>(std::min<int64_t>(R, rows - rg * R));
    float* yr = y + rg * R;
    int64_t t0 = 0;
    for (; t0 + kMaxNT <= n_tok; t0 += kMaxNT) Tile<K, kMaxNT>(tr, o, sbytes, cols, a, t0, yr, y_stride, valid);
    if (t0 < n_tok) {
      TileRest<K, kMaxNT - 1>(static_cast<int>(n_tok - t0), tr, o, sbytes, cols, a, t0, yr, y_stride, valid);
    }
  }
}

}  // namespace edgeq::x86_tiles
