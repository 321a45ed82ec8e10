// The `dotprod` tier's packed rows8 kernels (kernels/arm_packed_impl.h).
#define EDGEQ_KNS dotprod
#define EDGEQ_DOTPROD 1
#define EDGEQ_I8MM 0
#include "kernels/arm_packed_impl.h"
