// Fused RMSNorm -> quantize and SwiGLU -> quantize: on every kernel tier the fused kernel
// writes the same fp32 values as the unfused op and the same int8 codes, scales and sums
// as quantize_act on them; and a quantized model's logits are bit-identical with the
// fusion on and off (prefill and decode, integer and float formats).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/quantize.h"
#include "ops/ops.h"
#include "test_util.h"

namespace edgeq {
namespace {

std::vector<float> Gaussian(size_t n, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

std::vector<const KernelTable*> Tiers() {
  std::vector<const KernelTable*> v;
  for (const char* t : {"generic", "avx2", "avx512vnni"}) {
    if (const KernelTable* k = KernelsForTier(t)) v.push_back(k);
  }
  return v;
}

// d and c compared by their bits: a NaN block's scale must be NaN in both.
void ExpectSameQuant(const QuantAct& a, const QuantAct& b, int64_t n_tok, const char* what) {
  for (int64_t i = 0; i < n_tok * a.nb * kActBlock; ++i) ASSERT_EQ(a.q[i], b.q[i]) << what << " i=" << i;
  for (int64_t i = 0; i < n_tok * a.nb; ++i) {
    ASSERT_EQ(std::memcmp(&a.d[i], &b.d[i], sizeof(float)), 0) << what << " block " << i << ": " << b.d[i];
    ASSERT_EQ(a.s[i], b.s[i]) << what << " block " << i;
    ASSERT_EQ(std::memcmp(&a.c[i], &b.c[i], sizeof(float)), 0) << what << " block " << i;
  }
}

// Model widths (288, 768, 2048, 5632) and the SIMD tiers' groupings of 1, 2, 4 and 8
// blocks (224 = 4+2+1, 480 = 8+4+2+1), with and without a partial tail.
const int64_t kLengths[] = {1, 8, 12, 31, 32, 33, 64, 96, 128, 160, 172, 224, 256, 288, 480, 768, 1023, 2048, 5632};

// Non-finite values sprinkled over a row (a poisoned model): NaN, +Inf, -Inf.
void Poison(std::vector<float>* v, int64_t every, int64_t first) {
  const float vals[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()};
  int k = 0;
  for (int64_t i = first; i < static_cast<int64_t>(v->size()); i += every) (*v)[i] = vals[k++ % 3];
}

// poison: NaN/Inf in x (every 101st value; RmsScale is computed from a clean copy so
// the other blocks stay finite) or in up (every 77th), to check quant_act.h's rules.
TEST(FusedActQuant, NormQuantMatchesNormThenQuantizeOnEveryTier) {
  for (const KernelTable* k : Tiers()) {
    ASSERT_NE(k->norm_quant_act, nullptr) << k->isa;
    for (bool poison : {false, true}) {
      for (int64_t n : kLengths) {
        const int64_t T = 3;
        auto x = Gaussian(T * n, n, 3.0f), w = Gaussian(n, n + 1);
        if (n > 5) x[5] = 80.0f;  // an outlier channel
        const auto clean = x;
        if (poison) Poison(&x, 101, n / 3);
        std::vector<float> ref(T * n), fused(T * n);
        std::vector<uint8_t> m1(QuantActBytes(T, n)), m2(QuantActBytes(T, n));
        QuantAct a = MakeQuantAct(m1.data(), T, n), b = MakeQuantAct(m2.data(), T, n);
        for (int64_t t = 0; t < T; ++t) {
          const float scale = RmsScale(clean.data() + t * n, n, 1e-5f);
          for (int64_t i = 0; i < n; ++i) ref[t * n + i] = w[i] * (scale * x[t * n + i]);  // RmsNorm's arithmetic
          k->norm_quant_act(x.data() + t * n, w.data(), scale, fused.data() + t * n, n, &b, t);
        }
        k->quantize_act(ref.data(), n, T, n, &a);
        ASSERT_EQ(std::memcmp(ref.data(), fused.data(), sizeof(float) * T * n), 0)
            << k->isa << " n=" << n << " poison=" << poison;
        ExpectSameQuant(a, b, T, k->isa);
      }
    }
  }
}

// Gates up to +-100 reach both clamps of the exp; poison as above (gate and up).
TEST(FusedActQuant, SwiGluQuantMatchesSwiGluThenQuantizeOnEveryTier) {
  for (const KernelTable* k : Tiers()) {
    ASSERT_NE(k->swiglu_quant_act, nullptr) << k->isa;
    for (bool poison : {false, true}) {
      for (int64_t n : kLengths) {
        const int64_t T = 2;
        auto gate = Gaussian(T * n, 2 * n, 4.0f), up = Gaussian(T * n, 2 * n + 1, 2.0f);
        for (int64_t i = 0; i < T * n; i += 13) gate[i] *= 25.0f;
        if (poison) {
          Poison(&gate, 101, n / 3);
          Poison(&up, 77, n / 2);
        }
        std::vector<float> ref = gate, fused = gate;
        std::vector<uint8_t> m1(QuantActBytes(T, n)), m2(QuantActBytes(T, n));
        QuantAct a = MakeQuantAct(m1.data(), T, n), b = MakeQuantAct(m2.data(), T, n);
        for (int64_t t = 0; t < T; ++t) {
          k->swiglu_f32(ref.data() + t * n, up.data() + t * n, n);
          k->swiglu_quant_act(fused.data() + t * n, up.data() + t * n, n, &b, t);
        }
        k->quantize_act(ref.data(), n, T, n, &a);
        ASSERT_EQ(std::memcmp(ref.data(), fused.data(), sizeof(float) * T * n), 0)
            << k->isa << " n=" << n << " poison=" << poison;
        ExpectSameQuant(a, b, T, k->isa);
      }
    }
  }
}

// The fused RMSNorm quantizer of every tier against the generic one: the same fp32
// values, codes and scales, poisoned rows included. (SwiGLU's values differ between
// tiers by their exp, so each tier's is compared with its own unfused ops above.)
TEST(FusedActQuant, NormQuantMatchesGenericOnEveryTier) {
  const KernelTable* ref = KernelsForTier("generic");
  ASSERT_NE(ref, nullptr);
  for (int64_t n : kLengths) {
    auto x = Gaussian(n, 3 * n, 2.0f), w = Gaussian(n, 3 * n + 1);
    Poison(&x, 211, n / 2);
    std::vector<float> o1(n), o2(n);
    std::vector<uint8_t> m1(QuantActBytes(1, n)), m2(QuantActBytes(1, n));
    QuantAct a = MakeQuantAct(m1.data(), 1, n), b = MakeQuantAct(m2.data(), 1, n);
    ref->norm_quant_act(x.data(), w.data(), 0.37f, o1.data(), n, &a, 0);
    for (const KernelTable* k : Tiers()) {
      k->norm_quant_act(x.data(), w.data(), 0.37f, o2.data(), n, &b, 0);
      ASSERT_EQ(std::memcmp(o1.data(), o2.data(), sizeof(float) * n), 0) << k->isa << " n=" << n;
      ExpectSameQuant(a, b, 1, k->isa);
    }
  }
}

std::vector<float> Logits(const Model& m, bool fused) {
  ThreadPool pool(2);
  auto g = LlamaGraph::Create(m, 64, 32, &pool);
  EXPECT_TRUE(g.ok());
  (*g)->set_fused_act_quant(fused);
  const int64_t V = m.config.vocab_size;
  std::vector<int32_t> prompt = {1, 403, 261, 290, 345, 300, 271, 280, 410, 333, 260, 299, 318, 275, 400, 266, 350,
                                 302, 277, 281};
  const int32_t n = static_cast<int32_t>(prompt.size());
  std::vector<float> all(static_cast<size_t>(n + 4) * V);
  EXPECT_TRUE((*g)->Forward(prompt.data(), n, 0, true, all.data()).ok());  // prefill (pooled norms)
  for (int32_t i = 0; i < 4; ++i) {                                        // decode
    int32_t tok = 260 + 7 * i;
    EXPECT_TRUE((*g)->Forward(&tok, 1, n + i, false, all.data() + static_cast<int64_t>(n + i) * V).ok());
  }
  return all;
}

TEST(FusedActQuant, ModelLogitsIdenticalWithAndWithoutFusion) {
  const std::string dir = test::SourceDir() + "/models/stories260K/";
  auto m = LoadModel({dir + "stories260K.bin", dir + "tok512.bin"});
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (const char* scheme : {"w8a8", "w4a8-g32", "w4a8-g64a", "w4e0m4-g32"}) {
    auto q = QuantizeInMemory(**m, scheme, 2);
    ASSERT_TRUE(q.ok()) << q.status().message();
    const auto a = Logits(**q, true), b = Logits(**q, false);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()), 0) << scheme;
  }
}

}  // namespace
}  // namespace edgeq
