// AVX-VNNI kernels over the rows8-x86 packed layout (256-bit vpdpbusd, VEX-encoded: Intel
// Alder Lake and later, AMD Zen 5): kernels/x86_rows8_impl.h. Packing is the AVX2 tier's.
#define EDGEQ_KNS avxvnni
#define EDGEQ_DPBUSD 1
#include "kernels/x86_rows8_impl.h"
