// AVX2 integer kernels: u8 x s8 products with maddubs + madd. maddubs saturates its
// int16 pair sums, which nibbles (<= 15) never reach; w8c's biased bytes (w + 128) could,
// so the general dot goes through |w| and sign(a, w) instead.
#include <immintrin.h>

// u8 (0..255) x s8: maddubs saturates at 32767, so split into abs/sign form: the u8
// operand here is either a nibble (0..15, safe) or w8c's w+128. For the latter we
// recover the signed weight and use sign(a, w) with abs(w).
static inline __m256i EdgeqDotAvx2(__m256i u, __m256i s) {
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  // Treat u as (signed w) + 128 when it may exceed 15: w = u ^ 0x80.
  const __m256i w = _mm256_xor_si256(u, bias);
  const __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(s, w));  // = w*s pairs
  __m256i r = _mm256_madd_epi16(prod, ones);  // sum of w*s (signed w)
  // Convert back to sum (w+128)*s = sum w*s + 128*sum s.
  const __m256i s16 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), s), ones);
  return _mm256_add_epi32(r, _mm256_slli_epi32(s16, 7));
}

#define EDGEQ_KNS avx2
#define EDGEQ_DOT_U8S8(u, s) EdgeqDotAvx2(u, s)
// Nibbles (<= 15) times int8: pair sums fit in int16 (2*15*127).
#define EDGEQ_DOT_NIB(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#include "kernels/x86_quant_impl.h"
