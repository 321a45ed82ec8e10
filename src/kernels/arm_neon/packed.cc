// The `neon` tier's packed rows8 kernels (kernels/arm_packed_impl.h).
#define EDGEQ_KNS neon
#define EDGEQ_DOTPROD 0
#define EDGEQ_I8MM 0
#include "kernels/arm_packed_impl.h"
