// The `i8mm` tier's packed rows8 kernels (kernels/arm_packed_impl.h).
#define EDGEQ_KNS i8mm
#define EDGEQ_DOTPROD 1
#define EDGEQ_I8MM 1
#include "kernels/arm_packed_impl.h"
