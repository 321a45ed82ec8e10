// One full 32-value activation block quantized with AVX2 (4 registers of 8 floats) into
// block b of token row t of a QuantAct: d = max|v| / 127, codes rounded to nearest even
// (the reference's lrintf), with quant_act.h's NaN/Inf rules (NaN -> code 0, codes clamped,
// a NaN block's scale NaN). Used by the AVX2 activation quantizer and the fused
// RMSNorm/SwiGLU quantizers (x86_avx2/f32.cc). Include only from TUs compiled with AVX2.
#pragma once

#include <immintrin.h>

#include "kernels/quant_act.h"

namespace edgeq {
namespace {

// always_inline: with several callers in a TU GCC 12 calls it out of line, passing the
// block through the stack; inlined, avx2 norm_quant_act at 288 wide takes 0.5x the time.
[[gnu::always_inline]] inline void QuantizeActBlock32Avx2(__m256 v0, __m256 v1, __m256 v2, __m256 v3, QuantAct* a,
                                                          int64_t t, int64_t b) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                           _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  // max_ps drops NaNs: find them separately (ActScale/ActCode in quant_act.h).
  const __m256 un = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)),
                                 _mm256_or_ps(_mm256_cmp_ps(v2, v2, _CMP_UNORD_Q), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
  const bool nan = _mm256_movemask_ps(un) != 0;
  const float d = ActScale(amax / 127.0f, nan), id = d > 0 ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
  // NaN -> 0 (the and with the ordered mask), then clamp to [-127, 127]; round to
  // nearest even, like lrintf in the reference. Finite blocks are unchanged by both.
  auto code = [&](__m256 v) {
    __m256 r = _mm256_mul_ps(v, vid);
    r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, nlim), lim));
  };
  const __m256i i0 = code(v0), i1 = code(v1), i2 = code(v2), i3 = code(v3);
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_hadd_epi32(s4, s4);
  s4 = _mm_hadd_epi32(s4, s4);
  // Pack 32 int32 -> 32 int8 in element order (packs interleave 128-bit lanes).
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(a->q + (t * a->nb + b) * kActBlock), p);
  const int32_t sum = _mm_cvtsi128_si32(s4);
  a->d[t * a->nb + b] = d;
  a->s[t * a->nb + b] = sum;
  a->c[t * a->nb + b] = d * static_cast<float>(sum);
}

}  // namespace
}  // namespace edgeq
