#include "ops/hadamard.h"

#include <cmath>

namespace edgeq {
namespace {

// Fixed ±1 pattern (bits of a constant): deterministic between the quantizer, which
// rotates weights once, and the runtime, which rotates activations every token.
constexpr uint32_t kSignBits = 0x9E3779B9u;

}  // namespace

void BlockHadamard(float* x, int64_t n) {
  const float norm = 1.0f / std::sqrt(static_cast<float>(kHadamardBlock));
  for (int64_t b = 0; b + kHadamardBlock <= n; b += kHadamardBlock) {
    float* v = x + b;
    for (int i = 0; i < kHadamardBlock; ++i) {
      if ((kSignBits >> i) & 1u) v[i] = -v[i];
    }
    for (int len = 1; len < kHadamardBlock; len <<= 1) {  // in-place Walsh-Hadamard butterflies
      for (int i = 0; i < kHadamardBlock; i += 2 * len) {
        for (int j = i; j < i + len; ++j) {
          const float a = v[j], c = v[j + len];
          v[j] = a + c;
          v[j + len] = a - c;
        }
      }
    }
    for (int i = 0; i < kHadamardBlock; ++i) v[i] *= norm;
  }
}

}  // namespace edgeq
