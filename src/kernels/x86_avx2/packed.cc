// AVX2 kernels over the rows8-x86 packed layout (pmaddubsw + pmaddwd): kernels/x86_rows8_impl.h.
#define EDGEQ_KNS avx2
#define EDGEQ_DPBUSD 0
#include "kernels/x86_rows8_impl.h"
