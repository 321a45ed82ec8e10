// AVX-512 VNNI integer kernels: vpdpbusd (u8 x s8 -> int32, no intermediate
// saturation) on 256-bit lanes (AVX512VL).
#include <immintrin.h>

#define EDGEQ_KNS avx512vnni
#define EDGEQ_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#define EDGEQ_DOT_NIB(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#include "kernels/x86_quant_impl.h"
