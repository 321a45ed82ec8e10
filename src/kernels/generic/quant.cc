// Scalar reference of activation quantization and the integer W4/W8 x A8 kernels:
// exact integer dot products per 32-element block, one float multiply-add per block.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels.h"

namespace edgeq {

QuantAct MakeQuantAct(void* mem, int64_t n_tok, int64_t n) {
  QuantAct a;
  a.nb = (n + kActBlock - 1) / kActBlock;
  uint8_t* p = static_cast<uint8_t*>(mem);
  p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
  a.q = reinterpret_cast<int8_t*>(p);
  p += n_tok * a.nb * kActBlock;
  a.d = reinterpret_cast<float*>(p);
  p += n_tok * a.nb * 4;
  a.s = reinterpret_cast<int32_t*>(p);
  p += n_tok * a.nb * 4;
  a.c = reinterpret_cast<float*>(p);
  return a;
}

void QuantizeActRow4(const float* row, int64_t n, QuantAct* a, int64_t t) {
  int8_t* q = a->q + t * a->nb * kActBlock;
  for (int64_t b = 0; b < a->nb; ++b) {
    const int64_t lo = b * kActBlock, hi = std::min<int64_t>(n, lo + kActBlock);
    float amax = 0;
    bool nan = false;
    for (int64_t i = lo; i < hi; ++i) {
      amax = std::max(amax, std::fabs(row[i]));
      nan |= std::isnan(row[i]);
    }
    const float d = ActScale(amax / 7.0f, nan);
    const float id = d > 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < kActBlock; ++i) {
      const int v = lo + i < hi ? ActCode(row[lo + i] * id, 7.0f) : 0;
      q[lo + i] = static_cast<int8_t>(v);
      sum += v;
    }
    a->d[t * a->nb + b] = d;
    a->s[t * a->nb + b] = sum;
    a->c[t * a->nb + b] = d * static_cast<float>(sum);
  }
}

namespace generic {

void QuantizeActBlock(const float* v, int64_t valid, QuantAct* a, int64_t t, int64_t b) {
  int8_t* q = a->q + (t * a->nb + b) * kActBlock;
  float amax = 0;
  bool nan = false;
  for (int64_t i = 0; i < valid; ++i) {
    amax = std::max(amax, std::fabs(v[i]));
    nan |= std::isnan(v[i]);
  }
  const float d = ActScale(amax / 127.0f, nan);
  const float id = d > 0 ? 1.0f / d : 0.0f;
  int32_t sum = 0;
  for (int64_t i = 0; i < kActBlock; ++i) {
    const int x = i < valid ? ActCode(v[i] * id, 127.0f) : 0;
    q[i] = static_cast<int8_t>(x);
    sum += x;
  }
  a->d[t * a->nb + b] = d;
  a->s[t * a->nb + b] = sum;
  a->c[t * a->nb + b] = d * static_cast<float>(sum);
}

void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* row = x + t * x_stride;
    for (int64_t b = 0; b < a->nb; ++b) {
      const int64_t lo = b * kActBlock, hi = std::min<int64_t>(n, lo + kActBlock);
      QuantizeActBlock(row + lo, hi - lo, a, t, b);
    }
  }
}

// Fused producers: each 32-block is computed, stored and quantized while in L1.
void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t) {
  for (int64_t b = 0; b < a->nb; ++b) {
    const int64_t lo = b * kActBlock, hi = std::min<int64_t>(n, lo + kActBlock);
    for (int64_t i = lo; i < hi; ++i) out[i] = w[i] * (scale * x[i]);
    QuantizeActBlock(out + lo, hi - lo, a, t, b);
  }
}

void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t) {
  for (int64_t b = 0; b < a->nb; ++b) {
    const int64_t lo = b * kActBlock, hi = std::min<int64_t>(n, lo + kActBlock);
    SwiGluF32(gate + lo, up + lo, hi - lo);
    QuantizeActBlock(gate + lo, hi - lo, a, t, b);
  }
}

// Nibble of element e (0 <= e < g) of a w4 block's quantized bytes.
static inline int Nibble(const uint8_t* qs, int g, int e) {
  return e < g / 2 ? (qs[e] & 0x0F) : (qs[e - g / 2] >> 4);
}

void GemmEq(EqType type, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
            const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(type));
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t t = 0; t < n_tok; ++t) {
      const int8_t* q = a.qrow(t);
      const float* d = a.drow(t);
      const int32_t* s = a.srow(t);
      float acc = 0.0f;
      if (tr.group == 0) {  // w8c: one row scale
        float scale;
        std::memcpy(&scale, row, 4);
        const int8_t* wq = reinterpret_cast<const int8_t*>(row + 4);
        for (int64_t b = 0; b < a.nb; ++b) {
          int32_t isum = 0;
          const int64_t hi = std::min<int64_t>(kActBlock, cols - b * kActBlock);
          for (int64_t i = 0; i < hi; ++i) isum += wq[b * kActBlock + i] * q[b * kActBlock + i];
          acc += d[b] * static_cast<float>(isum);
        }
        acc *= scale;
      } else {
        const int g = tr.group, per = g / kActBlock;
        const int64_t n_wb = (cols + g - 1) / g;
        for (int64_t wb = 0; wb < n_wb; ++wb) {
          const uint8_t* blk = row + wb * tr.block_bytes;
          uint16_t dh, mh = 0;
          std::memcpy(&dh, blk, 2);
          if (tr.asymmetric) std::memcpy(&mh, blk + 2, 2);
          const float wd = Fp16ToFp32(dh), wm = Fp16ToFp32(mh);
          const uint8_t* qs = blk + (tr.asymmetric ? 4 : 2);
          for (int k = 0; k < per; ++k) {
            const int64_t ab = wb * per + k;
            if (ab >= a.nb) break;
            int32_t isum = 0;  // sum of nibble * q (unsigned nibbles)
            for (int i = 0; i < kActBlock; ++i) isum += Nibble(qs, g, k * kActBlock + i) * q[ab * kActBlock + i];
            if (tr.asymmetric) acc += d[ab] * (wd * static_cast<float>(isum) + wm * static_cast<float>(s[ab]));
            else acc += wd * d[ab] * static_cast<float>(isum - 8 * s[ab]);
          }
        }
      }
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace generic
}  // namespace edgeq
