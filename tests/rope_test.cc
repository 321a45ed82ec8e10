// ApplyRopeQKTable (RoPE of q and k from a per-token cos/sin table, with the key stored
// elsewhere: fused into the KV store) gives exactly the values of two ApplyRope calls,
// for both rotation layouts, out of place and in place.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/ops.h"

namespace edgeq {
namespace {

TEST(Rope, FusedQkRotationEqualsTwoSeparateRotations) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (bool neox : {false, true}) {
    for (int32_t hd : {8, 48, 64}) {
      RopeParams rp;
      rp.head_dim = hd;
      rp.neox = neox;
      for (int32_t i = 0; i < hd / 2; ++i) rp.inv_freq.push_back(std::pow(10000.0f, -2.0f * i / hd));
      const int32_t nq = 6, nkv = 2;
      for (int32_t pos : {0, 1, 3, 17, 300, 511, 4000, 8191}) {
        std::vector<float> q(nq * hd), k(nkv * hd), cs(hd);
        for (auto& v : q) v = nd(rng);
        for (auto& v : k) v = nd(rng);
        std::vector<float> q_ref = q, k_ref = k, k_out(nkv * hd, -1.0f);
        ApplyRope(rp, q_ref.data(), nq, pos);
        ApplyRope(rp, k_ref.data(), nkv, pos);
        RopeCosSin(rp, pos, cs.data());
        ApplyRopeQKTable(rp, cs.data(), q.data(), nq, k.data(), k_out.data(), nkv);
        EXPECT_EQ(q, q_ref) << "table, neox=" << neox << " hd=" << hd << " pos=" << pos;
        EXPECT_EQ(k_out, k_ref) << "table, neox=" << neox << " hd=" << hd << " pos=" << pos;
        ApplyRopeQKTable(rp, cs.data(), q.data(), 0, k.data(), k.data(), nkv);  // in place
        EXPECT_EQ(k, k_ref);
      }
    }
  }
}

}  // namespace
}  // namespace edgeq
