// Repacked ("interleaved by 8 rows") layout of the integer weight formats, made at load
// time for the matrix kernels. In the file (format/eq_types.h) each row is stored on its
// own; here 8 consecutive rows are interleaved in 4-byte chunks, so that one 256-bit
// register holds 4 consecutive weights of each of 8 rows and an integer dot product
// instruction (vpdpbusd, maddubs+madd, sdot) against a broadcast 4-byte chunk of the
// activation yields 8 per-row sums at once: lanes are rows, no horizontal reductions,
// one float conversion and one fma per 8 rows x 32 weights x token. Every token of a
// batch reuses the unpacked weights of a block (prefill and batched decode).
//
// Row group (8 rows; the last group is zero-padded to 8 rows), cols = n, nb = ceil(n/32),
// nwb = ceil(n/G) weight blocks of G elements:
//   w4 (group G, symmetric):  float d[nwb][8]; then nb sub-blocks of 128 bytes
//   w4 (asymmetric):          float d[nwb][8]; float m[nwb][8]; then nb sub-blocks of 128 bytes
//   w8c:                      float scale[8];  then nb sub-blocks of 256 bytes
// A w4 sub-block (32 elements of 8 rows) is 4 vectors P0..P3 of 32 bytes. With
// V_j[4*i + e] = unsigned nibble of row i, element 4*j + e (j = 0..7, i = 0..7, e = 0..3):
//   P_m[b] = V_m[b] | V_{m+4}[b] << 4          (m = 0..3)
// A w8c sub-block is V_0..V_7 (32 bytes each) with the signed int8 weights.
// Values are the file's: (nibble - 8) * d, nibble * d + m, q * scale.
#pragma once

#include <cstdint>

#include "format/eq_types.h"
#include "kernels/quant_act.h"

namespace edgeq {

constexpr int kPackRows = 8;

// The packed layouts differ in the rows per group R and in how the per-group weight
// scales are stored:
//   rows8 (generic, above): R = 8, fp32 scales, no padding (the reference, NEON tiers);
//   rows8-x86 (AVX2, AVX-VNNI tiers): R = 8, fp16 scales (as in the file: 4.125 instead
//                     of 4.25 bits per weight for w4g128, 4.5 instead of 5 for w4g32), the
//                     scale region padded to 64 bytes so every sub-block starts on a line;
//   rows16-x86 (AVX-512 VNNI tier): the same with R = 16, so one 512-bit register holds
//                     4 consecutive weights of 16 rows.
// With R rows the description above holds with 8 replaced by R: vectors of 4R bytes, w4
// sub-blocks of 16R bytes, w8c sub-blocks of 32R bytes, scales d[nwb][R] (m[nwb][R]).
// w8c keeps its fp32 row scales in every layout (one per row: no bandwidth to win).
struct PackLayout {
  int32_t rows = kPackRows;
  bool f16_scales = false;
  int32_t scale_align = 1;  // bytes; the scale region of a group is padded to this
};
constexpr PackLayout kRows8Generic{8, false, 1};
constexpr PackLayout kRows8X86{8, true, 64};
constexpr PackLayout kRows16X86{16, true, 64};

// True when `t` has a packed layout (the integer-kernel formats).
bool PackableEq(EqType t);
// Bytes of one packed row group, of its scale region (where the sub-blocks start), and
// of the whole packed matrix.
uint64_t PackedGroupBytes(const PackLayout& l, EqType t, int64_t cols);
uint64_t PackedScaleBytes(const PackLayout& l, EqType t, int64_t cols);
uint64_t PackedEqBytes(const PackLayout& l, EqType t, int64_t rows, int64_t cols);
// Repacks a matrix stored row by row (row_bytes per row) into `out` (PackedEqBytes).
void PackEq(const PackLayout& l, EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols,
            uint8_t* out);
// The generic layout.
inline uint64_t PackedGroupBytes(EqType t, int64_t cols) { return PackedGroupBytes(kRows8Generic, t, cols); }
inline uint64_t PackedEqBytes(EqType t, int64_t rows, int64_t cols) {
  return PackedEqBytes(kRows8Generic, t, rows, cols);
}
inline void PackEq(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out) {
  PackEq(kRows8Generic, t, w, row_bytes, rows, cols, out);
}

// Each tier's packing: the layout its gemm_eq_packed reads (KernelTable::pack_eq).
using PackedEqBytesFn = uint64_t (*)(EqType t, int64_t rows, int64_t cols);
using PackEqFn = void (*)(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out);

// y[tok * y_stride + r] = W[r] . dequant(a[tok]) for the rows of row groups [g0, g1)
// (rows >= `rows` are not written).
using GemmEqPackedFn = void (*)(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0,
                                int64_t g1, const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);

namespace generic {
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
}  // namespace generic

}  // namespace edgeq
