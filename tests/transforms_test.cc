// Outlier transforms must preserve the model's function: logits after smoothing and
// after block rotation equal the original's up to float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "model/calibrate.h"
#include "model/llama.h"
#include "model/transforms.h"
#include "ops/hadamard.h"
#include "test_util.h"

namespace edgeq {
namespace {

std::vector<float> Logits(const Model& m, const std::vector<int32_t>& toks) {
  ThreadPool pool(1);
  auto g = LlamaGraph::Create(m, 64, 64, &pool);
  EXPECT_TRUE(g.ok());
  std::vector<float> out(m.config.vocab_size);
  EXPECT_TRUE((*g)->Forward(toks.data(), toks.size(), 0, false, out.data()).ok());
  return out;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(Hadamard, IsOrthogonalAndSelfInverseUpToSigns) {
  std::vector<float> x(70), y;
  for (int i = 0; i < 70; ++i) x[i] = std::sin(i * 1.7f) * (i == 5 ? 40.0f : 1.0f);
  y = x;
  BlockHadamard(y.data(), 70);
  double nx = 0, ny = 0;
  for (int i = 0; i < 70; ++i) {
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  EXPECT_NEAR(nx, ny, 1e-3 * nx);                 // norm preserved
  for (int i = 64; i < 70; ++i) EXPECT_EQ(x[i], y[i]);  // tail untouched
  // The outlier (40 at index 5) is spread: no element of its block keeps more than 40/sqrt(32)+1.
  float mx = 0;
  for (int i = 0; i < 32; ++i) mx = std::max(mx, std::fabs(y[i]));
  EXPECT_LT(mx, 40.0f / std::sqrt(32.0f) + 1.5f);
  // Dot products are preserved when both sides are rotated.
  std::vector<float> w(70), wr;
  for (int i = 0; i < 70; ++i) w[i] = std::cos(i * 0.3f);
  wr = w;
  BlockHadamard(wr.data(), 70);
  double d0 = 0, d1 = 0;
  for (int i = 0; i < 70; ++i) {
    d0 += x[i] * w[i];
    d1 += y[i] * wr[i];
  }
  EXPECT_NEAR(d0, d1, 1e-4);
}

class TransformsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LoadModel({test::SourceDir() + "/models/stories260K/stories260K.bin",
                        test::SourceDir() + "/models/stories260K/tok512.bin"});
    ASSERT_TRUE(m.ok());
    model_ = std::move(m).value();
    auto t = Tokenizer::Create(model_->tokenizer_data);
    ASSERT_TRUE(t.ok());
    tok_ = std::move(t).value();
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  const std::vector<int32_t> toks_ = {1, 403, 407, 261, 378, 275, 260, 30, 45, 11, 66, 77};
};

TEST_F(TransformsTest, DensifyIsExact) {
  DenseModel d = Densify(*model_);
  auto view = ModelView(d);
  EXPECT_EQ(MaxDiff(Logits(*view, toks_), Logits(*model_, toks_)), 0.0);
}

TEST_F(TransformsTest, SmoothingPreservesLogits) {
  std::string text = "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
  std::string calib;
  for (int i = 0; i < 20; ++i) calib += text;
  auto stats = CollectActivationStats(*model_, *tok_, calib, 64, 4, 1);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->count({0, "attn_in"}), 1u);
  EXPECT_EQ(stats->at({0, "ffn_mid"}).max_abs.size(), 172u);
  DenseModel d = Densify(*model_);
  ApplySmoothing(&d, *stats, 0.5f);
  auto view = ModelView(d);
  // Scales up to 1e3 change rounding, not the function: 1e-3 of logits of size ~10.
  EXPECT_LT(MaxDiff(Logits(*view, toks_), Logits(*model_, toks_)), 2e-3);
}

TEST_F(TransformsTest, BlockRotationPreservesLogits) {
  DenseModel d = Densify(*model_);
  ApplyBlockRotation(&d);
  auto view = ModelView(d);
  EXPECT_TRUE(view->config.rotate_inputs);
  EXPECT_LT(MaxDiff(Logits(*view, toks_), Logits(*model_, toks_)), 1e-3);
}

}  // namespace
}  // namespace edgeq
