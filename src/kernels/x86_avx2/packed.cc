// AVX2 packed-layout kernels: maddubs + madd (see kernels/x86_packed_impl.h).
#define EDGEQ_KNS avx2
#define EDGEQ_VNNI 0
#include "kernels/x86_packed_impl.h"
