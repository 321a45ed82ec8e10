// Kernel table: the inner loops the ops call, chosen once at start-up for this CPU.
// kernels/generic/ is the scalar reference and is always built; ISA folders fill
// the same table with faster versions (dispatch.cc picks them).
#pragma once

#include <cstdint>

#include "format/ggml_types.h"

namespace edgeq {

struct KernelTable {
  const char* isa = "generic";
  // sum_i a[i]*b[i]
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  // y[i] += a * x[i]
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n) = nullptr;
};

// The table for this CPU (detected once; EDGEQ_ISA forces a lower tier).
const KernelTable& Kernels();

namespace generic {
float DotF32(const float* a, const float* b, int64_t n);
void AxpyF32(float a, const float* x, float* y, int64_t n);
}  // namespace generic

}  // namespace edgeq
