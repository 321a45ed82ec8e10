// AVX2+FMA fp32 kernels (compiled with -mavx2 -mfma; only called after detection).
#include <immintrin.h>

#include "kernels/exp_consts.h"
#include "kernels/kernels.h"
#include "kernels/x86_act_block.h"

namespace edgeq::avx2 {

float DotF32(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

namespace {

// exp(x) for 8 floats (the method and constants: kernels/exp_consts.h). Below kMin it
// returns ~1e-38 rather than 0, which no caller can tell apart.
inline __m256 Exp8(__m256 x) {
  using namespace exp_consts;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kMin)), _mm256_set1_ps(kMax));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kPoly[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kPoly[i]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

}  // namespace

void SwiGluF32(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));  // = Silu8Mul
  }
  generic::SwiGluF32(gate + i, up + i, n - i);
}

namespace {

inline __m256 Silu8Mul(__m256 g, __m256 u) {  // SwiGluF32's vector body
  const __m256 e = Exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

}  // namespace

void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* row = x + t * x_stride;
    for (int64_t b = 0; b < a->nb; ++b) {
      const int64_t lo = b * kActBlock;
      if (lo + kActBlock > n) {  // partial tail block: the scalar reference's
        generic::QuantizeActBlock(row + lo, n - lo, a, t, b);
        continue;
      }
      QuantizeActBlock32Avx2(_mm256_loadu_ps(row + lo), _mm256_loadu_ps(row + lo + 8), _mm256_loadu_ps(row + lo + 16),
                             _mm256_loadu_ps(row + lo + 24), a, t, b);
    }
  }
}

void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t) {
  const __m256 vs = _mm256_set1_ps(scale);
  int64_t b = 0;
  for (; (b + 1) * kActBlock <= n; ++b) {
    const int64_t lo = b * kActBlock;
    __m256 v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_mul_ps(_mm256_loadu_ps(w + lo + 8 * k), _mm256_mul_ps(vs, _mm256_loadu_ps(x + lo + 8 * k)));
      _mm256_storeu_ps(out + lo + 8 * k, v[k]);
    }
    QuantizeActBlock32Avx2(v[0], v[1], v[2], v[3], a, t, b);
  }
  if (b < a->nb) {  // partial last block
    const int64_t lo = b * kActBlock;
    for (int64_t i = lo; i < n; ++i) out[i] = w[i] * (scale * x[i]);
    generic::QuantizeActBlock(out + lo, n - lo, a, t, b);
  }
}

void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t) {
  int64_t b = 0;
  for (; (b + 1) * kActBlock <= n; ++b) {
    const int64_t lo = b * kActBlock;
    __m256 v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = Silu8Mul(_mm256_loadu_ps(gate + lo + 8 * k), _mm256_loadu_ps(up + lo + 8 * k));
      _mm256_storeu_ps(gate + lo + 8 * k, v[k]);
    }
    QuantizeActBlock32Avx2(v[0], v[1], v[2], v[3], a, t, b);
  }
  if (b < a->nb) {  // partial last block: SwiGluF32 from a multiple of 8, as unfused
    const int64_t lo = b * kActBlock;
    SwiGluF32(gate + lo, up + lo, n - lo);
    generic::QuantizeActBlock(gate + lo, n - lo, a, t, b);
  }
}

float ExpSumF32(float* x, int64_t n, float sub) {
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4) + generic::ExpSumF32(x + i, n - i, sub);
}

float MaxF32(const float* x, int64_t n) {
  if (n < 8) return generic::MaxF32(x, n);
  __m256 m0 = _mm256_loadu_ps(x), m1 = m0;
  int64_t i = 8;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  if (i + 8 <= n) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + n - 8));  // the last 8 again: the tail, no scalar loop
  m0 = _mm256_max_ps(m0, m1);
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

void ScaleF32(float* x, int64_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  for (; i < n; ++i) x[i] *= s;
}

}  // namespace edgeq::avx2
