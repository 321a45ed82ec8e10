// Fills the kernel table once from the detected CPU features. EDGEQ_ISA forces a
// lower tier (generic, avx2, ...) for tests and for users; asking for a tier the CPU
// lacks falls back to the best available one and says so on stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "kernels/kernels.h"

namespace edgeq {

#if defined(__x86_64__)
namespace avx2 {
float DotF32(const float* a, const float* b, int64_t n);
void AxpyF32(float a, const float* x, float* y, int64_t n);
}  // namespace avx2
#endif

namespace {

int TierRank(const std::string& name) {
  if (name == "generic") return 0;
  if (name == "avx2") return 1;
  if (name == "avxvnni") return 2;
  if (name == "avx512vnni") return 3;
  return -1;
}

KernelTable MakeTable() {
  KernelTable t;
  t.isa = "generic";
  t.dot_f32 = generic::DotF32;
  t.axpy_f32 = generic::AxpyF32;
  int limit = 100;
  if (const char* env = std::getenv("EDGEQ_ISA"); env != nullptr && *env != 0) {
    limit = TierRank(env);
    if (limit < 0) {
      std::fprintf(stderr, "edgeq: warning: unknown EDGEQ_ISA '%s' (generic, avx2, avxvnni, avx512vnni); using the best available\n", env);
      limit = 100;
    }
  }
#if defined(__x86_64__)
  const CpuFeatures& f = GetCpuFeatures();
  if (limit >= 1 && f.avx2 && f.fma && f.f16c) {
    t.isa = "avx2";
    t.dot_f32 = avx2::DotF32;
    t.axpy_f32 = avx2::AxpyF32;
  }
#endif
  return t;
}

}  // namespace

const KernelTable& Kernels() {
  static const KernelTable table = MakeTable();
  return table;
}

}  // namespace edgeq
