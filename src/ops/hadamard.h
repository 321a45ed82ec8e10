// Block-diagonal randomized Hadamard rotation (QuaRot-style outlier spreading).
// Every full block of 32 consecutive elements is replaced by H·(s ⊙ x)/sqrt(32), where
// H is the 32x32 Walsh-Hadamard matrix and s a fixed ±1 sign pattern; a tail shorter
// than 32 (e.g. the last 12 of stories260K's 172) is left as it is. The transform is
// orthogonal, so rotating both an activation row and every weight row that consumes it
// leaves their dot products unchanged while spreading an outlier channel's magnitude
// over its block, which shrinks the per-block max that sets the quantization step.
#pragma once

#include <cstdint>

namespace edgeq {

constexpr int kHadamardBlock = 32;

// In place on x[0..n).
void BlockHadamard(float* x, int64_t n);

}  // namespace edgeq
