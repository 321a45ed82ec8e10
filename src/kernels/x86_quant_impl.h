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

void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* row = x + t * x_stride;
    int8_t* q = a->q + t * a->nb * kActBlock;
    for (int64_t b = 0; b < a->nb; ++b) {
      const int64_t lo = b * kActBlock;
      if (lo + kActBlock > n) {  // partial tail block: scalar
        float amax = 0;
        bool nan = false;
        for (int64_t i = lo; i < n; ++i) {
          amax = std::max(amax, std::fabs(row[i]));
          nan |= std::isnan(row[i]);
        }
        const float d = ActScale(amax / 127.0f, nan), id = d > 0 ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int64_t i = 0; i < kActBlock; ++i) {
          const int v = lo + i < n ? ActCode(row[lo + i] * id, 127.0f) : 0;
          q[lo + i] = static_cast<int8_t>(v);
          sum += v;
        }
        a->d[t * a->nb + b] = d;
        a->s[t * a->nb + b] = sum;
        a->c[t * a->nb + b] = d * static_cast<float>(sum);
        continue;
      }
      __m256 v0 = _mm256_loadu_ps(row + lo), v1 = _mm256_loadu_ps(row + lo + 8);
      __m256 v2 = _mm256_loadu_ps(row + lo + 16), v3 = _mm256_loadu_ps(row + lo + 24);
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
      __m256i i0 = code(v0), i1 = code(v1);
      __m256i i2 = code(v2), i3 = code(v3);
      __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_hadd_epi32(s4, s4);
      s4 = _mm_hadd_epi32(s4, s4);
      // Pack 32 int32 -> 32 int8 in element order (packs interleave 128-bit lanes).
      __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
      __m256i p = _mm256_packs_epi16(p01, p23);
      p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + lo), p);
      a->d[t * a->nb + b] = d;
      a->s[t * a->nb + b] = _mm_cvtsi128_si32(s4);
      a->c[t * a->nb + b] = d * static_cast<float>(a->s[t * a->nb + b]);
    }
  }
}

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
