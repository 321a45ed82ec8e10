// The constants of the vectorised exp (avx2::Exp8 in kernels/x86_avx2/f32.cc,
// avx512vnni::Exp16 in kernels/x86_avx512_exp.h): both tiers compute exp operation for
// operation from these, so each lane gives the same float on either tier.
// x = n ln2 + r with n = round(x * log2(e)) and |r| <= ln2 / 2, ln2 split in a high part
// exact in float (8 significant bits, so n * kLn2Hi is exact) and the low rest; e^r by
// the degree-6 Taylor polynomial in Horner form, kPoly[0] the highest coefficient
// (truncation error < 2e-8 relative on that interval); times 2^n built in the exponent
// bits. Inputs are clamped to [kMin, kMax], where the result is a normal float.
#pragma once

namespace edgeq::exp_consts {

inline constexpr float kMin = -87.3f;
inline constexpr float kMax = 88.7f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kPoly[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};

}  // namespace edgeq::exp_consts
