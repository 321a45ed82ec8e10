// CPU feature detection, done once. x86: CPUID and XGETBV (the OS must save the
// wider registers, or AVX/AVX-512 instructions fault even when CPUID lists them).
// ARM64: getauxval(AT_HWCAP/AT_HWCAP2).
#pragma once

#include <string>

namespace edgeq {

struct CpuFeatures {
  // x86
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, avxvnni = false;
  // ARM64
  bool neon = false, dotprod = false, i8mm = false, fp16 = false;
  std::string Describe() const;
};

const CpuFeatures& GetCpuFeatures();

}  // namespace edgeq
