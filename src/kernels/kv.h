// KV-cache storage formats and the attention inner loops that read them directly
// (no dequantized copy of the cache is ever made).
//
// One *row* is one token's keys (or values) of one layer: kv_dim = n_kv_heads * head_dim
// values. Layouts of a row:
//   f32   kv_dim floats
//   f16   kv_dim IEEE halves
//   q8    [ng] x {fp16 d, fp16 m}, then kv_dim uint8 codes            value = m + d*c
//   q2p   [ng] x {fp16 d, fp16 m}, then kv_dim 2-bit codes ("hi plane", 4 per byte,
//         element i in bits 2*(i%4) of byte i/4)                      value = m + d*c
//   q4 =  a q2p row followed by a second 2-bit plane ("lo plane", same packing):
//         the 4-bit code is c = 4*hi + lo                             value = m + d*c
// ng = ceil(kv_dim / 32): groups of 32 consecutive channels of the token (the last one
// may be shorter), each with its own asymmetric fp16 scale d and minimum m, chosen from
// the group's min and max (round to nearest). Keys and values use the same per-token
// layout, so one token's precision can change on its own (token-adaptive precision).
//
// The two planes of q4 are why 4 -> 2 bit re-quantization is free and in place: dropping
// the lo plane leaves hi = c >> 2, whose best reconstruction is m + d*(4*hi + 1.5), i.e.
// a q2p row with m' = m + 1.5 d and d' = 4 d (only the group parameters are rewritten).
#pragma once

#include <cstdint>

namespace edgeq {

enum class KvType : uint8_t { kF32 = 0, kF16, kQ8, kQ4, kQ2 };
constexpr int kKvGroup = 32;

const char* KvTypeName(KvType t);
// "f32", "f16", "q8", "q4", "q2"; false when unknown.
bool ParseKvType(const char* s, KvType* out);

inline int32_t KvGroups(int32_t dim) { return (dim + kKvGroup - 1) / kKvGroup; }
inline int64_t KvPlaneBytes(int32_t dim) { return (dim + 3) / 4; }
// Bytes of one row (for q4: params + both planes).
int64_t KvRowBytes(KvType t, int32_t dim);
// Offset of a q4 row's lo plane (after the group parameters and the hi plane).
inline int64_t KvQ4LoOffset(int32_t dim) { return 4 * static_cast<int64_t>(KvGroups(dim)) + KvPlaneBytes(dim); }

// A run of n consecutive positions stored with the same kernel kind. Token i's row is
// at rows + i*stride. For q2p rows, lo (may be null) holds the lo planes: token i's lo
// plane is at lo + i*lo_stride, or with lo_slot at lo + lo_slot[i]*lo_stride (lo_slot[i]
// < 0: that token has none, it is 2-bit).
enum class KvKernel : uint8_t { kF32 = 0, kF16, kQ8, kQ2p };
constexpr int kKvKernels = 4;
// The kernel kind that reads rows of type t (q4 and q2 are both q2p rows; q4 adds lo planes).
inline KvKernel KvKernelOf(KvType t) {
  return t == KvType::kF32   ? KvKernel::kF32
         : t == KvType::kF16 ? KvKernel::kF16
         : t == KvType::kQ8  ? KvKernel::kQ8
                             : KvKernel::kQ2p;
}
struct KvSpan {
  KvKernel kind = KvKernel::kF32;
  int32_t dim = 0;  // kv_dim of a row
  int32_t n = 0;
  const uint8_t* rows = nullptr;
  int64_t stride = 0;
  const uint8_t* lo = nullptr;
  int64_t lo_stride = 0;
  const int32_t* lo_slot = nullptr;
  // Channel layout (keys grouped along tokens, kv.h "Key blocks"): non-null for a run of
  // tokens of one key block. params holds d[dim] then m[dim] (fp16) for the whole run;
  // rows then hold codes only (q8: dim bytes, q2p: the hi plane).
  const uint8_t* params = nullptr;
};

// Token i's lo plane in a q2p span, or null (a 2-bit token, or a span without lo planes).
inline const uint8_t* KvLoPlane(const KvSpan& s, int32_t i) {
  if (s.lo == nullptr) return nullptr;
  if (s.lo_slot == nullptr) return s.lo + static_cast<int64_t>(i) * s.lo_stride;
  return s.lo_slot[i] < 0 ? nullptr : s.lo + static_cast<int64_t>(s.lo_slot[i]) * s.lo_stride;
}

// Grouped-query attention reads each stored row once for all nq query heads that share it:
// out[j*out_stride + i] = scale * dot(q[j*q_stride ..+hd), row_i[off..off+hd)), j < nq.
using KvScoresFn = void (*)(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride,
                            float scale, float* out, int64_t out_stride);
// out[j*out_stride + e] += sum_i p[j*p_stride + i] * row_i[off + e], e < hd, j < nq.
using KvAccumFn = void (*)(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride,
                           float* out, int64_t out_stride);
constexpr int32_t kKvMaxGroup = 16;  // nq per call (callers split larger groups)

// Scalar quantization of one row (the specification; used by every tier). bits for
// q2p/q4 rows: 2 or 4. For kQ4 the lo plane is written right after the hi plane.
void KvQuantizeRow(KvType t, const float* x, int32_t dim, uint8_t* row);
// A q2p row (hi plane) plus a separate lo plane (bits 4) or none (bits 2).
void KvQuantizeRowPlanes(const float* x, int32_t dim, int bits, uint8_t* row, uint8_t* lo);
// Inverse (for tests and re-quantization): lo may be null for q2p rows.
void KvDequantizeRow(KvKernel kind, const uint8_t* row, const uint8_t* lo, int32_t dim, float* x);
// Drops the lo plane of a 4-bit token in place: rewrites the row's group parameters so
// that its hi plane alone is the 2-bit reconstruction (see above).
void KvDropLoPlane(uint8_t* row, int32_t dim);

// Key blocks (--kv-key-layout channel, KIVI): the keys of kKvTokenGroup consecutive tokens
// of one layer are quantized together, per channel: channel e of the block has its own
// fp16 d[e] and m[e] from that channel's min and max over the block's tokens. Layout of a
// block: params d[dim] fp16, m[dim] fp16 (4*dim bytes), then per token its codes (q8: dim
// bytes; 2/4-bit: the hi plane, dim/4 bytes), and for 4-bit the lo planes (one per token,
// same packing) wherever the cache keeps them. The block being filled is kept in fp16.
constexpr int kKvTokenGroup = 32;
inline int64_t KvKeyBlockParamBytes(int32_t dim) { return 4 * static_cast<int64_t>(dim); }
// x: n rows of dim floats (n <= kKvTokenGroup); bits 8, 4 or 2. codes: n rows of
// (bits == 8 ? dim : plane) bytes; lo: n lo planes (bits 4) or null.
void KvQuantizeKeyBlock(const float* x, int32_t n, int32_t dim, int bits, uint8_t* params, uint8_t* codes,
                        uint8_t* lo);
// The same from fp16 rows (the cache's residual block), without a float copy.
void KvQuantizeKeyBlockF16(const uint16_t* x, int32_t n, int32_t dim, int bits, uint8_t* params, uint8_t* codes,
                           uint8_t* lo);
// Row i of a key block back to floats (lo: that token's lo plane or null; bits 8: q8 codes).
void KvDequantizeKeyRow(const uint8_t* params, const uint8_t* codes, const uint8_t* lo, int bits, int32_t dim,
                        float* x);
// The 4 -> 2 bit step of a whole key block in place (per channel d' = 4d, m' = m + 1.5d).
void KvDropKeyBlockLoPlanes(uint8_t* params, int32_t dim);

namespace generic {
void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride);
void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride);
}  // namespace generic

}  // namespace edgeq
