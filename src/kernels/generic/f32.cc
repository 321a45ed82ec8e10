#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/kernels.h"

namespace edgeq::generic {

// Eight independent partial sums: keeps the loop free of a serial dependency and
// lets the compiler use whatever vector width the baseline ISA has.
float DotF32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(src[i]);
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void SwiGluF32(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

float ExpSumF32(float* x, int64_t n, float sub) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - sub);
    sum += x[i];
  }
  return sum;
}

// Eight running maxima, as DotF32: no serial chain of compares through the whole row.
float MaxF32(const float* x, int64_t n) {
  float m = x[0];
  int64_t i = 0;
  if (n >= 8) {
    float acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = x[k];
    for (i = 8; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) acc[k] = std::max(acc[k], x[i + k]);
    }
    for (int k = 0; k < 8; ++k) m = std::max(m, acc[k]);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

void ScaleF32(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace edgeq::generic
