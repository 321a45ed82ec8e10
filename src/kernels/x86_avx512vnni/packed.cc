// AVX-512 VNNI packed-layout kernels: vpdpbusd on 256-bit lanes (see kernels/x86_packed_impl.h).
#define EDGEQ_KNS avx512vnni
#define EDGEQ_VNNI 1
#include "kernels/x86_packed_impl.h"
