// GPTQ against round-to-nearest on correlated random data, and the element re-rounding
// it is built on.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "format/eq_types.h"
#include "format/tensor_types.h"
#include "model/gptq.h"

namespace edgeq {
namespace {

// Activations with strongly correlated channels (a low-rank part plus noise), as real
// matrix inputs have; H = X^T X.
std::vector<double> CorrelatedHessian(int64_t n, int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  const int rank = 4;
  std::vector<float> basis(rank * n);
  for (auto& b : basis) b = g(rng);
  std::vector<double> h(n * n, 0.0);
  std::vector<float> x(n);
  for (int64_t t = 0; t < tokens; ++t) {
    float c[rank];
    for (auto& ci : c) ci = g(rng);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = 0.2f * g(rng);
      for (int r = 0; r < rank; ++r) x[i] += c[r] * basis[r * n + i];
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j) h[i * n + j] += double(x[i]) * x[j];
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) h[i * n + j] = h[j * n + i];
  return h;
}

std::vector<float> RandomWeights(int64_t rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 0.05f);
  std::vector<float> w(rows * n);
  for (auto& v : w) v = g(rng);
  return w;
}

std::vector<uint8_t> Rtn(GgmlType t, const std::vector<float>& w, int64_t rows, int64_t n) {
  const uint64_t rb = RowBytes(t, n).value();
  std::vector<uint8_t> q(rows * rb);
  for (int64_t r = 0; r < rows; ++r) EXPECT_TRUE(EncodeRow(t, w.data() + r * n, q.data() + r * rb, n).ok());
  return q;
}

class GptqTypes : public ::testing::TestWithParam<EqType> {};

TEST_P(GptqTypes, LowersHessianLossBelowRoundToNearest) {
  const GgmlType t = static_cast<GgmlType>(GetParam());
  const int64_t rows = 24, n = 172;  // 172: a partial last group, as in stories260K
  auto w = RandomWeights(rows, n, 7);
  auto h = CorrelatedHessian(n, 400, 11);
  auto rtn = Rtn(t, w, rows, n);
  auto l_rtn = HessianLoss(w.data(), rows, n, h, t, rtn.data());
  ASSERT_TRUE(l_rtn.ok()) << l_rtn.status().message();
  for (bool act_order : {false, true}) {
    std::vector<uint8_t> q(rtn.size());
    GptqOptions o;
    o.act_order = act_order;
    auto l = GptqQuantize(w.data(), rows, n, h, t, o, q.data(), nullptr);
    ASSERT_TRUE(l.ok()) << l.status().message();
    auto check = HessianLoss(w.data(), rows, n, h, t, q.data());
    ASSERT_TRUE(check.ok());
    EXPECT_NEAR(*l, *check, 1e-6 + 1e-3 * *check) << "reported loss is the loss of what was written";
    EXPECT_LT(*l, 0.8 * *l_rtn) << "act_order=" << act_order << " gptq " << *l << " rtn " << *l_rtn;
    // Every row still decodes to finite values within the weights' range.
    std::vector<float> d(n);
    const uint64_t rb = RowBytes(t, n).value();
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(DecodeRow(t, q.data() + r * rb, d.data(), n).ok());
      for (float v : d) ASSERT_TRUE(std::isfinite(v) && std::fabs(v) < 1.0f);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Eq, GptqTypes,
                         ::testing::Values(EqType::kW8C, EqType::kW4G32, EqType::kW4G128, EqType::kW4G128A,
                                           EqType::kE0M4G32));

TEST(Gptq, SetRowElementReproducesRoundToNearestCodes) {
  for (EqType et : {EqType::kW8C, EqType::kW4G32, EqType::kW4G128, EqType::kW4G64A}) {
    const GgmlType t = static_cast<GgmlType>(et);
    const int64_t n = 172;
    auto w = RandomWeights(1, n, 3);
    auto q = Rtn(t, w, 1, n);
    std::vector<uint8_t> q2 = q;
    std::vector<float> d(n);
    ASSERT_TRUE(DecodeRow(t, q.data(), d.data(), n).ok());
    for (int64_t i = 0; i < n; ++i) {
      float got = SetRowElementEq(et, q2.data(), i, w[i]);
      EXPECT_FLOAT_EQ(got, d[i]) << "type " << int(et) << " element " << i;
    }
    EXPECT_EQ(q, q2) << "re-rounding each element to its own value changes nothing";
  }
}

TEST(Gptq, BadHessianIsAClearError) {
  const int64_t rows = 2, n = 64;
  auto w = RandomWeights(rows, n, 1);
  std::vector<double> h(10, 1.0);  // wrong size
  std::vector<uint8_t> q(rows * RowBytes(static_cast<GgmlType>(EqType::kW4G32), n).value());
  auto r = GptqQuantize(w.data(), rows, n, h, static_cast<GgmlType>(EqType::kW4G32), GptqOptions{}, q.data(), nullptr);
  EXPECT_FALSE(r.ok());
}

// One factorization per input serves every matrix that reads it (q/k/v, gate/up): the
// codes are byte for byte those of factorizing for each matrix.
TEST(Gptq, SharedFactorGivesTheSameCodesAsOnePerMatrix) {
  const int64_t n = 172;
  auto h = CorrelatedHessian(n, 300, 5);
  for (bool act_order : {false, true}) {
    GptqOptions o;
    o.act_order = act_order;
    auto f = GptqFactorize(h, n, o);
    ASSERT_TRUE(f.ok()) << f.status().message();
    const std::pair<GgmlType, int64_t> mats[] = {{static_cast<GgmlType>(EqType::kW4G32), 24},
                                                 {static_cast<GgmlType>(EqType::kW4G128A), 8},
                                                 {static_cast<GgmlType>(EqType::kW8C), 16},
                                                 {static_cast<GgmlType>(EqType::kE0M4G32), 8}};
    uint32_t seed = 1;
    for (auto [t, rows] : mats) {
      auto w = RandomWeights(rows, n, seed++);
      const uint64_t rb = RowBytes(t, n).value();
      std::vector<uint8_t> a(rows * rb), b(rows * rb);
      auto la = GptqQuantize(w.data(), rows, n, h, t, o, a.data(), nullptr);
      auto lb = GptqQuantizeFactored(w.data(), rows, n, h, *f, t, b.data(), nullptr);
      ASSERT_TRUE(la.ok() && lb.ok());
      EXPECT_EQ(a, b) << TypeName(t) << " act_order=" << act_order;
      EXPECT_EQ(*la, *lb);
    }
  }
  auto bad = GptqQuantizeFactored(nullptr, 1, n + 1, h, GptqFactor{}, static_cast<GgmlType>(EqType::kW4G32), nullptr,
                                  nullptr);
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace edgeq
