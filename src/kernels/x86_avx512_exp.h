// avx2::Exp8 (kernels/x86_avx2/f32.cc) on 16 lanes, operation for operation and with the
// same constants (kernels/exp_consts.h), so every lane gives the same float as the AVX2
// version (each step is IEEE-exact per lane). Shared by the AVX-512 tier's softmax loops
// (x86_avx512vnni/f32.cc) and its fused SwiGLU quantizer (x86_avx512vnni/act.cc).
// Include only from files compiled with AVX-512F.
#pragma once

#include <immintrin.h>

#include "kernels/exp_consts.h"

namespace edgeq::avx512vnni {

[[gnu::always_inline]] inline __m512 Exp16(__m512 x) {
  using namespace exp_consts;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kMin)), _mm512_set1_ps(kMax));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kPoly[0]);
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kPoly[i]));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

}  // namespace edgeq::avx512vnni
