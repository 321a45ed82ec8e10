// edgeq's quantized formats and integer kernels: format error statistics pinned in
// narrow windows, partial groups, and every compiled kernel tier against the generic
// reference on odd sizes.
#include <gtest/gtest.h>

#include <limits>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "format/eq_types.h"
#include "format/tensor_types.h"
#include "kernels/kernels.h"

namespace edgeq {
namespace {

std::vector<float> Gaussian(size_t n, uint64_t seed, float outlier_every = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = nd(rng);
  if (outlier_every > 0) {
    for (size_t i = 0; i < n; i += static_cast<size_t>(outlier_every)) v[i] *= 20.0f;
  }
  return v;
}

double RelRmse(GgmlType t, const std::vector<float>& x, int64_t cols) {
  const int64_t rows = static_cast<int64_t>(x.size()) / cols;
  auto rb = RowBytes(t, cols);
  EXPECT_TRUE(rb.ok());
  std::vector<uint8_t> buf(*rb);
  std::vector<float> back(cols);
  double e = 0, n = 0;
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(EncodeRow(t, x.data() + r * cols, buf.data(), cols).ok());
    EXPECT_TRUE(DecodeRow(t, buf.data(), back.data(), cols).ok());
    for (int64_t j = 0; j < cols; ++j) {
      e += (back[j] - x[r * cols + j]) * double(back[j] - x[r * cols + j]);
      n += double(x[r * cols + j]) * x[r * cols + j];
    }
  }
  return std::sqrt(e / n);
}

TEST(EqFormats, RowBytesIncludePartialGroups) {
  EXPECT_EQ(*EqRowBytes(EqType::kW4G32, 172), 6u * 18);   // 5 full groups + 1 partial
  EXPECT_EQ(*EqRowBytes(EqType::kW4G128, 172), 2u * 66);
  EXPECT_EQ(*EqRowBytes(EqType::kW4G64A, 64), 36u);
  EXPECT_EQ(*EqRowBytes(EqType::kW8C, 172), 176u);
  EXPECT_FALSE(EqRowBytes(EqType::kW4G32, 0).ok());
  EXPECT_FALSE(EqRowBytes(EqType::kW4G32, int64_t{1} << 40).ok());
  EXPECT_NEAR(BitsPerWeight(static_cast<GgmlType>(EqType::kW4G32), 4096), 4.5, 1e-9);
  EXPECT_NEAR(BitsPerWeight(static_cast<GgmlType>(EqType::kW4G128), 4096), 4.125, 1e-9);
}

// Relative RMS error on N(0,1) data, pinned in +-5% windows around the measured values
// (so that both regressions and improvements show).
TEST(EqFormats, ErrorStatisticsArePinned) {
  const auto x = Gaussian(64 * 1024, 1);
  struct Case {
    EqType t;
    double expect;
  } cases[] = {
      {EqType::kW8C, 0.00778},   {EqType::kW4G32, 0.08119},  {EqType::kW4G64, 0.09055}, {EqType::kW4G128, 0.09825},
      {EqType::kW4G32A, 0.07135}, {EqType::kW4G128A, 0.09095}, {EqType::kE0M4G32, 0.07135}, {EqType::kE0M4G128, 0.09095},
  };
  for (auto& c : cases) {
    const double e = RelRmse(static_cast<GgmlType>(c.t), x, 1024);
    std::printf("%-12s rel rmse %.5f\n", GetEqTypeTraits(static_cast<uint32_t>(c.t))->name, e);
    EXPECT_GT(e, c.expect * 0.95) << GetEqTypeTraits(static_cast<uint32_t>(c.t))->name;
    EXPECT_LT(e, c.expect * 1.05) << GetEqTypeTraits(static_cast<uint32_t>(c.t))->name;
  }
}

TEST(EqFormats, OddRowLengthsRoundTrip) {
  for (EqType t : {EqType::kW8C, EqType::kW4G32, EqType::kW4G64, EqType::kW4G128, EqType::kW4G32A,
                   EqType::kW4G128A, EqType::kE0M4G32, EqType::kE0M4G64, EqType::kE0M4G128}) {
    for (int64_t n : {1, 3, 17, 31, 33, 172, 1023}) {
      auto x = Gaussian(n, 7 + n);
      const double e = RelRmse(static_cast<GgmlType>(t), x, n);
      EXPECT_LT(e, t == EqType::kW8C ? 0.02 : 0.2) << GetEqTypeTraits(static_cast<uint32_t>(t))->name << " n=" << n;
    }
  }
}

// E0M4: a code's fp16 bits are 0x3C00 | c << 6, the number 1 + c/16; the row dequantizer
// (fp32 bits 0x3F800000 | c << 19) equals the arithmetic reference bit for bit, and the
// grid is uniform, so the error equals asymmetric int4's at the same group size.
TEST(EqFormats, E0m4BitConversionIsTheSpecification) {
  for (uint32_t c = 0; c < 16; ++c) {
    EXPECT_EQ(Fp16ToFp32(E0m4ToFp16Bits(c)), 1.0f + c / 16.0f) << c;
    float f;
    const uint32_t u = E0m4ToFp32Bits(c);
    std::memcpy(&f, &u, 4);
    EXPECT_EQ(f, 1.0f + c / 16.0f) << c;
  }
  const std::pair<EqType, EqType> pairs[] = {{EqType::kE0M4G32, EqType::kW4G32A}, {EqType::kE0M4G128, EqType::kW4G128A}};
  for (auto [t, ti] : pairs) {
    for (int64_t n : {32, 172, 1024}) {
      const auto x = Gaussian(n, 3 + n);
      std::vector<uint8_t> q(*EqRowBytes(t, n));
      ASSERT_TRUE(QuantizeRowEq(t, x.data(), q.data(), n, nullptr).ok());
      std::vector<float> fast(n), ref(n);
      ASSERT_TRUE(DequantizeRowEq(t, q.data(), fast.data(), n).ok());
      ASSERT_TRUE(DequantizeRowE0m4Reference(t, q.data(), ref.data(), n).ok());
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(fast[i], ref[i]) << i;
    }
    const auto x = Gaussian(64 * 1024, 1);
    const double e = RelRmse(static_cast<GgmlType>(t), x, 1024), ei = RelRmse(static_cast<GgmlType>(ti), x, 1024);
    EXPECT_NEAR(e, ei, 0.01 * ei) << GetEqTypeTraits(static_cast<uint32_t>(t))->name;
  }
  EXPECT_FALSE(DequantizeRowE0m4Reference(EqType::kW4G32, nullptr, nullptr, 1).ok());
}

std::vector<const KernelTable*> Tiers() {
  std::vector<const KernelTable*> v;
  for (const char* t : {"generic", "avx2", "avxvnni", "avx512vnni"}) {
    if (const KernelTable* k = KernelsForTier(t)) v.push_back(k);
  }

  // ARM64 tiers (kernels/arm_packed_impl.h); the qemu runs force each CPU model.
  for (const char* t : {"neon", "dotprod", "i8mm"}) {
    if (const KernelTable* k = KernelsForTier(t)) v.push_back(k);
  }
  return v;
}

bool SameBits(float x, float y) { return std::memcmp(&x, &y, sizeof(float)) == 0; }

// Every tier's quantize_act of n_tok rows of n values (x_stride apart) against the
// generic reference: the same codes and sums, and the same bits of d and c (so NaN
// scales compare equal).
void ExpectQuantizeActMatchesGeneric(const std::vector<float>& x, int64_t n_tok, int64_t n, int64_t x_stride,
                                     const char* what) {
  const KernelTable* ref = KernelsForTier("generic");
  ASSERT_NE(ref, nullptr);
  std::vector<uint8_t> m1(QuantActBytes(n_tok, n)), m2(QuantActBytes(n_tok, n));
  QuantAct a = MakeQuantAct(m1.data(), n_tok, n), b = MakeQuantAct(m2.data(), n_tok, n);
  ref->quantize_act(x.data(), x_stride, n_tok, n, &a);
  for (const KernelTable* k : Tiers()) {
    std::memset(m2.data(), 0x5A, m2.size());  // nothing left over from the previous tier
    k->quantize_act(x.data(), x_stride, n_tok, n, &b);
    for (int64_t i = 0; i < n_tok * a.nb * kActBlock; ++i) {
      ASSERT_EQ(a.q[i], b.q[i]) << k->isa << " " << what << " n=" << n << " i=" << i;
    }
    for (int64_t i = 0; i < n_tok * a.nb; ++i) {
      ASSERT_TRUE(SameBits(a.d[i], b.d[i])) << k->isa << " " << what << " n=" << n << " block " << i;
      ASSERT_EQ(a.s[i], b.s[i]) << k->isa << " " << what << " n=" << n << " block " << i;
      ASSERT_TRUE(SameBits(a.c[i], b.c[i])) << k->isa << " " << what << " n=" << n << " block " << i;
      ASSERT_TRUE(SameBits(b.c[i], b.d[i] * static_cast<float>(b.s[i]))) << k->isa << ": c must be d * s";
    }
  }
}

// Lengths cover the SIMD tiers' block groupings (1, 2, 4 and 8 blocks at a time: 224 is
// 4+2+1 blocks, 480 is 8+4+2+1), partial tails and the model widths (288, 768:
// stories15m; 2048, 5632: tinyllama); rows with a stride longer than the row too.
TEST(EqKernels, ActivationQuantizationMatchesReferenceOnEveryTier) {
  for (int64_t n : {1, 31, 32, 33, 64, 96, 128, 160, 172, 224, 256, 288, 480, 768, 1023, 2048, 5632}) {
    ExpectQuantizeActMatchesGeneric(Gaussian(3 * n, n, 13), 3, n, n, "gaussian");
    ExpectQuantizeActMatchesGeneric(Gaussian(2 * (n + 19), n + 1), 2, n, n + 19, "strided");
  }
}

// Values where a shortcut would show: exact ties of v / d (round half to even), all-zero
// blocks, blocks whose max is so small that d is subnormal (1/d finite, or Inf), or 0;
// NaN and +-Inf at every place of a group of eight blocks, and whole rows of them.
TEST(EqKernels, ActivationQuantizationEdgeValuesMatchReferenceOnEveryTier) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {32, 64, 96, 128, 160, 224, 256, 288, 480, 2048}) {
    const int64_t nb = n / kActBlock;
    std::vector<float> x = Gaussian(n, n + 7);
    for (int64_t b = 0; b < nb; ++b) {
      float* v = x.data() + b * kActBlock;
      switch (b % 8) {
        case 0:  // d = 1 exactly: v / d = k + 0.5 ties both ways
          for (int i = 0; i < kActBlock; ++i) v[i] = static_cast<float>(i % 9) - 4.5f;
          v[7] = 127.0f;
          break;
        case 1:
          for (int i = 0; i < kActBlock; ++i) v[i] = 0.0f;
          v[3] = -0.0f;
          break;
        case 2:  // max ~5e-37: d subnormal, 1/d finite (the codes still span +-127)
          for (int i = 0; i < kActBlock; ++i) v[i] *= 2e-37f;
          v[9] = -5e-37f;
          break;
        case 3:  // max 1e-38: 1/d overflows to Inf
          for (int i = 0; i < kActBlock; ++i) v[i] *= 3e-39f;
          v[0] = 0.0f;
          v[30] = 1e-38f;
          break;
        case 4:
          v[b % kActBlock] = nan;
          break;
        case 5:
          v[31] = inf;
          break;
        case 6:  // max 1e-44: d rounds to 0
          for (int i = 0; i < kActBlock; ++i) v[i] = i % 3 == 0 ? 1e-44f : -1e-45f;
          break;
        case 7:  // -NaN: the x86 default NaN (0 * Inf) has the sign bit set
          v[0] = -inf;
          v[1] = nan;
          v[17] = -nan;
          break;
      }
    }
    // Rotated by 0-7 blocks, so each case meets each position in a group of eight.
    for (int64_t r = 0; r < std::min<int64_t>(nb, 8); ++r) {
      std::vector<float> y = x;
      std::rotate(y.begin(), y.begin() + r * kActBlock, y.end());
      ExpectQuantizeActMatchesGeneric(y, 1, n, n, "edge values");
    }
    ExpectQuantizeActMatchesGeneric(std::vector<float>(n, nan), 1, n, n, "all NaN");
    ExpectQuantizeActMatchesGeneric(std::vector<float>(n, -nan), 1, n, n, "all -NaN");
    ExpectQuantizeActMatchesGeneric(std::vector<float>(n, -inf), 1, n, n, "all -Inf");
  }
}

// A poisoned model (NaN/Inf scales, found by fuzz_eq_model: UBSan reported a signed
// overflow in the AVX2 packed kernel from a garbage block sum) gives non-finite
// activations. Every tier: codes in range, s the sum of the codes, NaN blocks scale NaN,
// and a whole matrix product of them is NaN/Inf where the input was, with no UB.
TEST(EqKernels, NonFiniteActivationsKeepCodesInRangeOnEveryTier) {
  const int64_t n = 96 + 7;  // three full blocks and a scalar tail
  std::vector<float> x = Gaussian(n, 5);
  x[3] = std::numeric_limits<float>::quiet_NaN();       // block 0: NaN
  x[40] = std::numeric_limits<float>::infinity();       // block 1: +Inf
  x[70] = -std::numeric_limits<float>::infinity();      // block 2: -Inf
  x[100] = std::numeric_limits<float>::quiet_NaN();     // tail block: NaN
  for (const KernelTable* k : Tiers()) {
    std::vector<uint8_t> mem(QuantActBytes(1, n));
    QuantAct a = MakeQuantAct(mem.data(), 1, n);
    k->quantize_act(x.data(), n, 1, n, &a);
    for (int64_t b = 0; b < a.nb; ++b) {
      int32_t sum = 0;
      for (int i = 0; i < kActBlock; ++i) {
        const int8_t q = a.q[b * kActBlock + i];
        ASSERT_GE(q, -127) << k->isa;
        ASSERT_LE(q, 127) << k->isa;
        sum += q;
      }
      EXPECT_EQ(a.s[b], sum) << k->isa << " block " << b;
    }
    EXPECT_TRUE(std::isnan(a.d[0])) << k->isa;
    EXPECT_TRUE(std::isinf(a.d[1])) << k->isa;
    EXPECT_TRUE(std::isinf(a.d[2])) << k->isa;
    EXPECT_TRUE(std::isnan(a.d[3])) << k->isa;
    std::vector<float> row4(n);
    for (int64_t i = 0; i < n; ++i) row4[i] = x[i];
    QuantizeActRow4(row4.data(), n, &a, 0);
    for (int64_t i = 0; i < a.nb * kActBlock; ++i) {
      ASSERT_GE(a.q[i], -7);
      ASSERT_LE(a.q[i], 7);
    }
    EXPECT_TRUE(std::isnan(a.d[0]));
  }
}

TEST(EqKernels, EveryTierMatchesGenericAndTheFloatDefinition) {
  const KernelTable* ref = KernelsForTier("generic");
  for (EqType t : {EqType::kW8C, EqType::kW4G32, EqType::kW4G64, EqType::kW4G128, EqType::kW4G32A, EqType::kW4G64A,
                   EqType::kW4G128A}) {
    for (int64_t cols : {32, 64, 96, 128, 172, 288, 1024}) {
      const int64_t rows = 37, n_tok = 3;
      auto w = Gaussian(rows * cols, cols * 31 + static_cast<int>(t));
      auto x = Gaussian(n_tok * cols, cols + 5, 17);
      const uint64_t rb = *EqRowBytes(t, cols);
      std::vector<uint8_t> wq(rb * rows);
      for (int64_t r = 0; r < rows; ++r) ASSERT_TRUE(QuantizeRowEq(t, w.data() + r * cols, wq.data() + r * rb, cols, nullptr).ok());
      std::vector<uint8_t> mem(QuantActBytes(n_tok, cols));
      QuantAct a = MakeQuantAct(mem.data(), n_tok, cols);
      ref->quantize_act(x.data(), cols, n_tok, cols, &a);
      // Float definition: dequantized weights . dequantized activations.
      std::vector<float> wd(cols), yref(n_tok * rows), y(n_tok * rows);
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(DequantizeRowEq(t, wq.data() + r * rb, wd.data(), cols).ok());
        for (int64_t tk = 0; tk < n_tok; ++tk) {
          double s = 0;
          for (int64_t j = 0; j < cols; ++j) s += wd[j] * double(a.q[tk * a.nb * kActBlock + j]) * a.d[tk * a.nb + j / kActBlock];
          yref[tk * rows + r] = static_cast<float>(s);
        }
      }
      for (const KernelTable* k : Tiers()) {
        k->gemm_eq(t, wq.data(), rb, 0, rows, cols, a, n_tok, y.data(), rows);
        for (int64_t i = 0; i < n_tok * rows; ++i) {
          // Integer block sums are exact; only the per-block float accumulation order
          // differs: relative 1e-5 of the row's magnitude.
          ASSERT_NEAR(y[i], yref[i], 1e-4 * (1.0 + std::fabs(yref[i])) + 1e-5 * cols)
              << k->isa << " " << GetEqTypeTraits(static_cast<uint32_t>(t))->name << " cols=" << cols << " i=" << i;
        }
      }
    }
  }
}

// The repacked layout (kernels/packed.h): every tier's packed kernel against the row
// layout's generic kernel, on row counts that leave a partial group of 8, odd widths,
// and 1..9 tokens (every tile width and remainder).
TEST(EqKernels, PackedKernelsMatchRowKernelsOnEveryTier) {
  const KernelTable* ref = KernelsForTier("generic");
  for (EqType t : {EqType::kW8C, EqType::kW4G32, EqType::kW4G64, EqType::kW4G128, EqType::kW4G32A, EqType::kW4G64A,
                   EqType::kW4G128A}) {
    for (int64_t cols : {32, 64, 172, 288, 1024}) {
      for (int64_t rows : {8, 13, 16, 37}) {
        const int64_t n_tok = 1 + (cols + rows) % 9;
        auto w = Gaussian(rows * cols, cols * 7 + rows + static_cast<int>(t));
        auto x = Gaussian(n_tok * cols, cols + 11, 13);
        const uint64_t rb = *EqRowBytes(t, cols);
        std::vector<uint8_t> wq(rb * rows);
        for (int64_t r = 0; r < rows; ++r) ASSERT_TRUE(QuantizeRowEq(t, w.data() + r * cols, wq.data() + r * rb, cols, nullptr).ok());
        std::vector<uint8_t> mem(QuantActBytes(n_tok, cols));
        QuantAct a = MakeQuantAct(mem.data(), n_tok, cols);
        ref->quantize_act(x.data(), cols, n_tok, cols, &a);
        std::vector<float> yref(n_tok * rows), y(n_tok * rows + 8, -7.0f);
        ref->gemm_eq(t, wq.data(), rb, 0, rows, cols, a, n_tok, yref.data(), rows);
        for (const KernelTable* k : Tiers()) {
          ASSERT_NE(k->gemm_eq_packed, nullptr) << k->isa;
          ASSERT_NE(k->pack_eq, nullptr) << k->isa;
          // Each tier packs into its own layout (k->pack_layout).
          std::vector<uint8_t> packed(k->packed_eq_bytes(t, rows, cols));
          k->pack_eq(t, wq.data(), rb, rows, cols, packed.data());
          std::fill(y.begin(), y.end(), -7.0f);
          const int64_t groups = (rows + k->pack_rows - 1) / k->pack_rows;
          k->gemm_eq_packed(t, packed.data(), rows, cols, 0, groups, a, n_tok, y.data(), rows);
          for (int64_t i = 0; i < n_tok * rows; ++i) {
            ASSERT_NEAR(y[i], yref[i], 1e-4 * (1.0 + std::fabs(yref[i])) + 1e-5 * cols)
                << k->isa << " " << GetEqTypeTraits(static_cast<uint32_t>(t))->name << " cols=" << cols << " rows=" << rows
                << " i=" << i;
          }
          EXPECT_EQ(y[n_tok * rows], -7.0f) << "wrote past the last row";
        }
      }
    }
  }
}

TEST(Kernels, F16ConversionAndF32DotMatchGenericOnEveryTier) {
  const KernelTable* ref = KernelsForTier("generic");
  std::mt19937 rng(3);
  for (int64_t n : {1, 7, 8, 9, 31, 33, 172, 1023}) {
    std::vector<uint16_t> h(n);
    for (auto& v : h) v = static_cast<uint16_t>(rng() & 0x7BFF);  // finite halves of both signs
    std::vector<float> a(n), b(n);
    ref->f16_to_f32(h.data(), a.data(), n);
    auto x = Gaussian(n, n), y = Gaussian(n, n + 1);
    const float dref = ref->dot_f32(x.data(), y.data(), n);
    for (const KernelTable* k : Tiers()) {
      k->f16_to_f32(h.data(), b.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], b[i]) << k->isa << " n=" << n;
      EXPECT_NEAR(k->dot_f32(x.data(), y.data(), n), dref, 1e-5 * n) << k->isa;
    }
  }
}

}  // namespace
}  // namespace edgeq

namespace edgeq {
namespace {

// The vectorised exp behind SwiGLU and softmax: within 4 ulp-ish (2e-7 relative) of libm
// on every tier, over the range the model sees (including large |x| that must clamp, not
// overflow to inf or produce NaN); the softmax's max and rescaling exact, with tails.
TEST(Kernels, SwiGluAndExpSumMatchLibmOnEveryTier) {
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 48, 63, 172, 1023}) {
    auto g = Gaussian(n, n + 3), u = Gaussian(n, n + 4);
    for (int64_t i = 0; i < n; i += 5) g[i] *= 30.0f;  // some large gates: exp(-g) near its limits
    std::vector<float> want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    auto x = Gaussian(n, n + 5);
    for (auto& v : x) v *= 10.0f;
    const float mx = *std::max_element(x.begin(), x.end());
    double want_sum = 0;
    // The argument is rounded to float (x - mx) in every implementation: compare with exp of that.
    for (int64_t i = 0; i < n; ++i) want_sum += std::exp(static_cast<double>(x[i] - mx));
    for (const KernelTable* k : Tiers()) {
      ASSERT_NE(k->swiglu_f32, nullptr) << k->isa;
      std::vector<float> out = g;
      k->swiglu_f32(out.data(), u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(out[i], want[i], 2e-6f * std::fabs(want[i]) + 1e-30f) << k->isa << " n=" << n << " g=" << g[i];
      }
      ASSERT_EQ(k->max_f32(x.data(), n), mx) << k->isa << " n=" << n;
      std::vector<float> y = x;
      y[n - 1] = mx + 1.0f;  // the max in the tail
      ASSERT_EQ(k->max_f32(y.data(), n), mx + 1.0f) << k->isa << " n=" << n;
      std::vector<float> sc = x;
      k->scale_f32(sc.data(), n, 0.37f);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sc[i], x[i] * 0.37f) << k->isa << " n=" << n;
      std::vector<float> e = x;
      const float sum = k->exp_sum_f32(e.data(), n, mx);
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << k->isa;
      for (int64_t i = 0; i < n; ++i) {
        const double w = std::exp(static_cast<double>(x[i] - mx));
        ASSERT_NEAR(e[i], w, 2e-6 * w + 1e-37) << k->isa << " x=" << x[i];
      }
    }
  }
}

}  // namespace
}  // namespace edgeq
