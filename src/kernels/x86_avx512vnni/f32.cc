// AVX-512 fp32 loops of the fp32 attention's online softmax (LlamaGraph::Attention): the
// block's max, exp and sum, and the rescaling of a query's output. Blocks are up to 64
// scores, often not a multiple of 16 (the last positions of a causal tile), so the tails
// are masked vector steps rather than scalar loops (a libm exp per element).
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_ps() inside _mm512_max_ps, _mm512_roundscale_ps
// and the _mm512_reduce_* as "(may be) used uninitialized" (false positives of the
// intrinsics headers).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cstdint>

#include "kernels/x86_avx512_exp.h"

namespace edgeq::avx512vnni {

namespace {

inline __mmask16 Tail(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }

}  // namespace

float ExpSumF32(float* x, int64_t n, float sub) {
  const __m512 vs = _mm512_set1_ps(sub);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
    _mm512_storeu_ps(x + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (i < n) {
    const __mmask16 k = Tail(n - i);
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
    _mm512_mask_storeu_ps(x + i, k, e);
    acc = _mm512_mask_add_ps(acc, k, acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

float MaxF32(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(x[0]);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) m = _mm512_mask_max_ps(m, Tail(n - i), m, _mm512_maskz_loadu_ps(Tail(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

void ScaleF32(float* x, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  if (i < n) _mm512_mask_storeu_ps(x + i, Tail(n - i), _mm512_mul_ps(_mm512_maskz_loadu_ps(Tail(n - i), x + i), vs));
}

}  // namespace edgeq::avx512vnni
