// Shared body of the x86 integer kernels, included by x86_avx2/quant.cc (DOT = maddubs
// + madd) and x86_avx512vnni/quant.cc (DOT = vpdpbusd on 256-bit lanes). Each
// includer defines EDGEQ_KNS (its namespace), EDGEQ_DOT_U8S8(u8, s8) -> __m256i of 8
// int32 partial sums of u8[i]*s8[i] for any u8, and EDGEQ_DOT_NIB(u8, s8), the same for
// u8 <= 15 (cheaper on AVX2). Only those files may include this.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels.h"

namespace edgeq::EDGEQ_KNS {
namespace {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float H16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The 32 unsigned nibbles of sub-block k of a w4 block with group g, in element order.
inline __m256i Nibbles(const uint8_t* qs, int g, int k) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  if (g == 32) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i lo = _mm_and_si128(x, _mm256_castsi256_si128(mask));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), _mm256_castsi256_si128(mask));
    return _mm256_set_m128i(hi, lo);
  }
  const int half = g / 64;  // sub-blocks per nibble half
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + (k % half) * 32));
  return k < half ? _mm256_and_si256(x, mask) : _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
}

}  // namespace

void GemmEq(EqType type, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
            const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(type));
  if (!tr.integer_kernel || cols % kActBlock != 0) {  // odd widths: the reference handles the tail
    generic::GemmEq(type, w, row_bytes, r0, r1, cols, a, n_tok, y, y_stride);
    return;
  }
  const int64_t nb = a.nb;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t t = 0; t < n_tok; ++t) {
      const int8_t* q = a.qrow(t);
      const float* d = a.drow(t);
      const int32_t* s = a.srow(t);
      __m256 acc = _mm256_setzero_ps();
      float corr = 0.0f;
      if (tr.group == 0) {  // w8c: signed weights as unsigned (w + 128), corrected by -128*sum(a)
        float scale;
        std::memcpy(&scale, row, 4);
        const int8_t* wq = reinterpret_cast<const int8_t*>(row + 4);
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        for (int64_t b = 0; b < nb; ++b) {
          const __m256i wv = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + b * kActBlock)), bias);
          const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * kActBlock));
          const __m256i isum = EDGEQ_DOT_U8S8(wv, av);
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d[b]), _mm256_cvtepi32_ps(isum), acc);
          corr -= 128.0f * d[b] * static_cast<float>(s[b]);
        }
        y[t * y_stride + r] = scale * (Hsum(acc) + corr);
        continue;
      }
      const int g = tr.group, per = g / kActBlock;
      const int64_t n_wb = cols / g + (cols % g != 0);
      for (int64_t wb = 0; wb < n_wb; ++wb) {
        const uint8_t* blk = row + wb * tr.block_bytes;
        const float wd = H16(blk);
        const float wm = tr.asymmetric ? H16(blk + 2) : 0.0f;
        const uint8_t* qs = blk + (tr.asymmetric ? 4 : 2);
        for (int k = 0; k < per; ++k) {
          const int64_t ab = wb * per + k;
          if (ab >= nb) break;
          const __m256i nib = Nibbles(qs, g, k);
          const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + ab * kActBlock));
          const __m256i isum = EDGEQ_DOT_NIB(nib, av);
          const float f = wd * d[ab];
          acc = _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(isum), acc);
          corr += tr.asymmetric ? d[ab] * wm * static_cast<float>(s[ab]) : -8.0f * f * static_cast<float>(s[ab]);
        }
      }
      y[t * y_stride + r] = Hsum(acc) + corr;
    }
  }
}

}  // namespace edgeq::EDGEQ_KNS
