// AVX-512 activation quantizers: quantize_act and the fused RMSNorm/SwiGLU producers of
// an integer matmul's input. One 32-value block is two zmm. Bit-identical to the generic
// and AVX2 versions: the same codes (rounded to nearest even, like lrintf), scales
// (max|v| / 127 and its reciprocal, as the reference divides), sums and NaN/Inf rules
// (quant_act.h); the SwiGLU values are avx2::SwiGluF32's (this tier's swiglu_f32).
//
// The cost of a block is mostly in its two horizontal reductions (max|v| and the code
// sum) and in packing int32 codes to bytes, all on the shuffle port; so up to eight
// blocks are reduced together (each shuffle step serves several blocks; measured 2048
// wide: one block at a time 2.0x slower, two 1.4x, four 1.1x), their scales come from
// one 256-bit divide, two blocks are packed with four shuffles, and the code sums are
// taken from the packed bytes (vpdpbusd against ones: half the vectors to reduce).
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_*() inside the intrinsics (max_epu32, shuffles,
// conversions) as "(may be) used uninitialized": a false positive of the headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <type_traits>

#include "kernels/kernels.h"
#include "kernels/x86_avx512_exp.h"

namespace edgeq {
namespace avx2 {
void SwiGluF32(float* gate, const float* up, int64_t n);  // this tier's swiglu_f32
}  // namespace avx2

namespace avx512vnni {
namespace {

struct MaxU32 {
  [[gnu::always_inline]] __m512i operator()(__m512i x, __m512i y) const { return _mm512_max_epu32(x, y); }
};
struct AddI32 {
  [[gnu::always_inline]] __m512i operator()(__m512i x, __m512i y) const { return _mm512_add_epi32(x, y); }
};

// Horizontal reductions of K blocks at once (max |v| and the code sums): the first steps
// pair 128-bit lanes of different blocks, so each shuffle serves several blocks, until
// lane k holds four partials of one block; the last steps reduce within lanes and one
// permute gathers block j's result into element j of a ymm.

// Lanes 0-3 of the result: four partials of blocks 0-3 (one vector each in m).
template <class Op>
[[gnu::always_inline]] inline __m512i Quad(const __m512i* m, Op op) {
  const __m512i t01 = op(_mm512_shuffle_i32x4(m[0], m[1], 0x44), _mm512_shuffle_i32x4(m[0], m[1], 0xEE));
  const __m512i t23 = op(_mm512_shuffle_i32x4(m[2], m[3], 0x44), _mm512_shuffle_i32x4(m[2], m[3], 0xEE));
  return op(_mm512_shuffle_i32x4(t01, t23, 0x88), _mm512_shuffle_i32x4(t01, t23, 0xDD));
}

// u's lane k holds partials of block k*K/4 (K = 1, 2, 4): the block results, in order.
template <int K, class Op>
[[gnu::always_inline]] inline __m256i LaneHeads(__m512i u, Op op) {
  u = op(u, _mm512_shuffle_epi32(u, static_cast<_MM_PERM_ENUM>(0x4E)));
  u = op(u, _mm512_shuffle_epi32(u, static_cast<_MM_PERM_ENUM>(0xB1)));
  constexpr int kS = 16 / K;  // element 0 of lane j*4/K (permutexvar reads the index mod 16)
  const __m512i heads = _mm512_setr_epi32(0, kS, 2 * kS, 3 * kS, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si256(_mm512_permutexvar_epi32(heads, u));
}

// Eight blocks: lane k of ua holds partials of block k, of ub block 4 + k.
template <class Op>
[[gnu::always_inline]] inline __m256i LaneHeads8(__m512i ua, __m512i ub, Op op) {
  __m512i u = op(_mm512_unpacklo_epi32(ua, ub), _mm512_unpackhi_epi32(ua, ub));  // lane k: a, b, a, b
  u = op(u, _mm512_shuffle_epi32(u, static_cast<_MM_PERM_ENUM>(0x4E)));
  const __m512i heads = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si256(_mm512_permutexvar_epi32(heads, u));
}

// op over each of m[0..K) (one vector per block): element j of the result is block j's.
template <int K, class Op>
[[gnu::always_inline]] inline __m256i ReduceBlocks(const __m512i* m, Op op) {
  static_assert(K == 1 || K == 2 || K == 4 || K == 8);
  if constexpr (K == 8) {
    return LaneHeads8(Quad(m, op), Quad(m + 4, op), op);
  } else if constexpr (K == 4) {
    return LaneHeads<4>(Quad(m, op), op);
  } else if constexpr (K == 2) {
    const __m512i t01 = op(_mm512_shuffle_i32x4(m[0], m[1], 0x44), _mm512_shuffle_i32x4(m[0], m[1], 0xEE));
    return LaneHeads<2>(op(t01, _mm512_shuffle_i32x4(t01, t01, 0xB1)), op);
  } else {
    const __m512i h = op(m[0], _mm512_shuffle_i32x4(m[0], m[0], 0x4E));
    return LaneHeads<1>(op(h, _mm512_shuffle_i32x4(h, h, 0xB1)), op);
  }
}

// The code sums of K blocks from ceil(K/2) vectors s of dword partial sums, block 2i in
// the low 256 bits of s[i] and 2i+1 in the high (K = 1: both halves hold block 0); the
// result as ReduceBlocks'. Pairs of blocks start one step further down than ReduceBlocks.
template <int K>
[[gnu::always_inline]] inline __m256i SumPairs(const __m512i* s) {
  const AddI32 add;
  auto quad = [&](const __m512i* p) __attribute__((always_inline)) {  // lane k: block k of two pairs
    return add(_mm512_shuffle_i32x4(p[0], p[1], 0x88), _mm512_shuffle_i32x4(p[0], p[1], 0xDD));
  };
  if constexpr (K == 8) {
    return LaneHeads8(quad(s), quad(s + 2), add);
  } else if constexpr (K == 4) {
    return LaneHeads<4>(quad(s), add);
  } else {
    return LaneHeads<K>(add(s[0], _mm512_shuffle_i32x4(s[0], s[0], 0xB1)), add);
  }
}

// Quantizes the K full blocks b..b+K-1 of token row t: block j's 32 values are v[2j],
// v[2j+1], and also in memory at src + 32j (only the rare non-finite path reads them).
template <int K>
[[gnu::always_inline]] inline void QuantizeBlocks(const __m512* v, const float* src, QuantAct* a, int64_t t,
                                                  int64_t b) {
  // max|v| on the float bits as unsigned integers: for non-negative floats they order
  // like the values, and a NaN's bits lie above +Inf's, so one compare finds both.
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  __m512i m[K];
#pragma GCC unroll 16
  for (int j = 0; j < K; ++j) {
    m[j] = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(v[2 * j]), abs_mask),
                            _mm512_and_si512(_mm512_castps_si512(v[2 * j + 1]), abs_mask));
  }
  const __m256i amax = ReduceBlocks<K>(m, MaxU32());
  const __m256 d = _mm256_div_ps(_mm256_castsi256_ps(amax), _mm256_set1_ps(127.0f));
  const __m256 id = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), d),  // d > 0 ? 1 / d : 0
                                  _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_GT_OQ));
  // A NaN or Inf in a block, or a scale so small (below 2^-128) that its reciprocal is
  // Inf, makes v * id non-finite: those blocks take the reference (quant_act.h's rules).
  // Otherwise |v * id| <= 127 * (1 + 2^-21) (two roundings, plus a subnormal d's), so the
  // codes need no clamp and no NaN mask: rounding keeps them in [-127, 127].
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(amax, _mm256_set1_epi32(0x7f7fffff)),
                                      _mm256_castps_si256(_mm256_cmp_ps(id, inf, _CMP_EQ_OQ)));
  if (!_mm256_testz_si256(bad, bad)) {
    for (int j = 0; j < K; ++j) generic::QuantizeActBlock(src + j * kActBlock, kActBlock, a, t, b + j);
    return;
  }
  __m512i c[2 * K];
#pragma GCC unroll 16
  for (int j = 0; j < K; ++j) {
    // element j of id to all 16 lanes
    const __m512 vid = _mm512_permutexvar_ps(_mm512_set1_epi32(j), _mm512_castps256_ps512(id));
    c[2 * j] = _mm512_cvtps_epi32(_mm512_mul_ps(v[2 * j], vid));  // nearest even (default MXCSR), as lrintf
    c[2 * j + 1] = _mm512_cvtps_epi32(_mm512_mul_ps(v[2 * j + 1], vid));
  }
  // Two blocks' int32 codes to 64 bytes: the packs interleave 4-code chunks per 128-bit
  // lane (dword 4k + i holds chunk k of c[i]); one permute restores element order. (K = 1
  // packs its block twice: the upper 32 bytes repeat it.)
  int8_t* q = a->q + (t * a->nb + b) * kActBlock;
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  constexpr int kP = (K + 1) / 2;
  __m512i p[kP];
#pragma GCC unroll 16
  for (int i = 0; i < kP; ++i) {
    const __m512i lo = _mm512_packs_epi32(c[4 * i], c[4 * i + 1]);
    __m512i hi = lo;
    if constexpr (K > 1) hi = _mm512_packs_epi32(c[4 * i + 2], c[4 * i + 3]);
    p[i] = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(lo, hi));
  }
  if constexpr (K == 1) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm512_castsi512_si256(p[0]));
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < kP; ++i) _mm512_storeu_si512(q + 64 * i, p[i]);
  }
  // Code sums from the bytes: vpdpbusd with all-ones adds 4 codes per dword, so block 2i
  // is in the low 256 bits of s[i] and block 2i+1 in the high; the same reduction steps
  // as the max from there, on half as many vectors.
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s[kP];
#pragma GCC unroll 16
  for (int i = 0; i < kP; ++i) s[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, p[i]);
  const __m256i sum = SumPairs<K>(s);
  const int64_t o = t * a->nb + b;
  const __mmask8 keep = static_cast<__mmask8>((1 << K) - 1);
  _mm256_mask_storeu_ps(a->d + o, keep, d);
  _mm256_mask_storeu_epi32(a->s + o, keep, sum);
  _mm256_mask_storeu_ps(a->c + o, keep, _mm256_mul_ps(d, _mm256_cvtepi32_ps(sum)));
}

// f(k, b) for the full blocks [0, full) of a row, k a std::integral_constant of the
// number of blocks from b: eight at a time, then four, two, one.
template <class F>
[[gnu::always_inline]] inline int64_t ForFullBlocks(int64_t full, F f) {
  int64_t b = 0;
  for (; b + 8 <= full; b += 8) f(std::integral_constant<int, 8>{}, b);
  if (b + 4 <= full) f(std::integral_constant<int, 4>{}, b), b += 4;
  if (b + 2 <= full) f(std::integral_constant<int, 2>{}, b), b += 2;
  if (b < full) f(std::integral_constant<int, 1>{}, b), ++b;
  return b;
}

// The fused producers' full blocks: out[e..e+16) = produce(e) for every 16 values of the
// row's full blocks, stored and quantized in groups of up to eight blocks. Returns the
// first block not done (a partial tail, for the caller).
template <class P>
[[gnu::always_inline]] inline int64_t StoreAndQuantize(int64_t n, float* out, QuantAct* a, int64_t t, P produce) {
  return ForFullBlocks(n / kActBlock, [&](auto k, int64_t b0) __attribute__((always_inline)) {
    constexpr int K = decltype(k)::value;
    const int64_t lo = b0 * kActBlock;
    __m512 v[2 * K];
#pragma GCC unroll 16
    for (int i = 0; i < 2 * K; ++i) {
      v[i] = produce(lo + 16 * i);
      _mm512_storeu_ps(out + lo + 16 * i, v[i]);
    }
    QuantizeBlocks<K>(v, out + lo, a, t, b0);
  });
}

// x86_avx2/f32.cc's Silu8Mul in 16 lanes, operation for operation (with Exp16,
// kernels/x86_avx512_exp.h: each step is IEEE-exact per lane, so the values are the same floats).
[[gnu::always_inline]] inline __m512 Silu16Mul(__m512 g, __m512 u) {
  const __m512 e = Exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

}  // namespace

void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* row = x + t * x_stride;
    const int64_t b = ForFullBlocks(n / kActBlock, [&](auto k, int64_t b0) __attribute__((always_inline)) {
      constexpr int K = decltype(k)::value;
      const float* src = row + b0 * kActBlock;
      __m512 v[2 * K];
#pragma GCC unroll 16
      for (int i = 0; i < 2 * K; ++i) v[i] = _mm512_loadu_ps(src + 16 * i);
      QuantizeBlocks<K>(v, src, a, t, b0);
    });
    if (b < a->nb) generic::QuantizeActBlock(row + b * kActBlock, n - b * kActBlock, a, t, b);  // partial tail
  }
}

void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t) {
  const __m512 vs = _mm512_set1_ps(scale);
  const int64_t b = StoreAndQuantize(n, out, a, t, [&](int64_t e) __attribute__((always_inline)) {
    return _mm512_mul_ps(_mm512_loadu_ps(w + e), _mm512_mul_ps(vs, _mm512_loadu_ps(x + e)));
  });
  if (b < a->nb) {  // partial last block
    const int64_t lo = b * kActBlock;
    for (int64_t i = lo; i < n; ++i) out[i] = w[i] * (scale * x[i]);
    generic::QuantizeActBlock(out + lo, n - lo, a, t, b);
  }
}

void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t) {
  const int64_t b = StoreAndQuantize(n, gate, a, t, [&](int64_t e) __attribute__((always_inline)) {
    return Silu16Mul(_mm512_loadu_ps(gate + e), _mm512_loadu_ps(up + e));
  });
  if (b < a->nb) {  // partial last block: swiglu_f32 from a multiple of 8, as unfused
    const int64_t lo = b * kActBlock;
    avx2::SwiGluF32(gate + lo, up + lo, n - lo);
    generic::QuantizeActBlock(gate + lo, n - lo, a, t, b);
  }
}

}  // namespace avx512vnni
}  // namespace edgeq
