// KV-cache formats (kernels/kv.h, ops/kv_cache.h): quantization error bounds, every
// attention kernel tier against the scalar reference on odd lengths and head sizes,
// the adaptive cache's bookkeeping, and the model run over each format.
#include <gtest/gtest.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kv.h"
#include "model/llama.h"
#include "model/model.h"
#include "ops/kv_cache.h"
#include "runtime/perplexity.h"
#include "runtime/session.h"
#include "test_util.h"

namespace edgeq {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// kv_scores (scale 0.5) and kv_accum of nq query heads over the head slice at `off` of
// span s, on every tier present, against an fp64 reference over `deq` (s's rows
// dequantized, s.n x s.dim). Scores must be within score_tol(reference, sum |q x|);
// outputs within 1e-5 of the sum of |p x| (+1e-5).
template <typename Tol>
void ExpectSpanMatchesReference(const KvSpan& s, const std::vector<float>& deq, int64_t off, int32_t hd,
                                const std::vector<float>& q, int32_t nq, const std::vector<float>& p, Tol score_tol,
                                const std::string& what) {
  const int32_t n = s.n;
  const int64_t dim = s.dim;
  std::vector<double> ref_s(nq * n), ref_o(nq * hd, 0.0), mag(nq, 0.0), smag(nq * n, 0.0);
  for (int32_t j = 0; j < nq; ++j) {
    for (int32_t i = 0; i < n; ++i) {
      double a = 0;
      for (int32_t e = 0; e < hd; ++e) {
        const double x = deq[i * dim + off + e];
        a += static_cast<double>(q[j * hd + e]) * x;
        smag[j * n + i] += std::fabs(q[j * hd + e] * x);
        ref_o[j * hd + e] += static_cast<double>(p[j * n + i]) * x;
        mag[j] += std::fabs(p[j * n + i] * x);
      }
      ref_s[j * n + i] = a * 0.5;
    }
  }
  for (const char* tier : {"generic", "avx2", "avxvnni", "avx512vnni"}) {
    const KernelTable* kt = KernelsForTier(tier);
    if (kt == nullptr) continue;
    std::vector<float> sc(nq * n), out(nq * hd, 0.0f);
    kt->kv_scores(s, off, hd, q.data(), nq, hd, 0.5f, sc.data(), n);
    kt->kv_accum(s, off, hd, p.data(), nq, n, out.data(), hd);
    for (int32_t j = 0; j < nq; ++j) {
      for (int32_t i = 0; i < n; ++i) {
        EXPECT_NEAR(sc[j * n + i], ref_s[j * n + i], score_tol(ref_s[j * n + i], smag[j * n + i]))
            << tier << " " << what << " i " << i;
      }
      for (int32_t e = 0; e < hd; ++e) {
        EXPECT_NEAR(out[j * hd + e], ref_o[j * hd + e], 1e-5 * mag[j] + 1e-5) << tier << " " << what << " e " << e;
      }
    }
  }
}

TEST(KvFormat, RoundTripErrorIsWithinHalfAStep) {
  for (int32_t dim : {8, 32, 33, 96, 100}) {
    auto x = Random(dim, dim);
    x[dim / 2] = 9.0f;  // an outlier channel
    for (KvType t : {KvType::kF16, KvType::kQ8, KvType::kQ4, KvType::kQ2}) {
      std::vector<uint8_t> row(KvRowBytes(t, dim));
      KvQuantizeRow(t, x.data(), dim, row.data());
      std::vector<float> y(dim);
      const int64_t lo_off = KvQ4LoOffset(dim);
      const KvKernel kind = KvKernelOf(t);
      KvDequantizeRow(kind, row.data(), t == KvType::kQ4 ? row.data() + lo_off : nullptr, dim, y.data());
      const int levels = t == KvType::kQ8 ? 255 : t == KvType::kQ4 ? 15 : 3;
      for (int32_t g = 0; g * kKvGroup < dim; ++g) {
        float lo = 1e30f, hi = -1e30f;
        for (int32_t i = g * kKvGroup; i < std::min(dim, (g + 1) * kKvGroup); ++i) {
          lo = std::min(lo, x[i]);
          hi = std::max(hi, x[i]);
        }
        // Half a step, plus the fp16 rounding of the scale and minimum.
        const float tol = t == KvType::kF16 ? 1e-3f * std::max(std::fabs(lo), std::fabs(hi))
                                            : 0.5f * (hi - lo) / levels * 1.01f + 2e-3f * std::max(std::fabs(lo), std::fabs(hi));
        for (int32_t i = g * kKvGroup; i < std::min(dim, (g + 1) * kKvGroup); ++i) {
          EXPECT_NEAR(y[i], x[i], tol) << KvTypeName(t) << " dim " << dim << " i " << i;
        }
      }
    }
  }
}

TEST(KvFormat, DroppingTheLoPlaneGivesTheTwoBitReconstruction) {
  const int32_t dim = 72;
  auto x = Random(dim, 7);
  std::vector<uint8_t> row(KvRowBytes(KvType::kQ2, dim)), lo(KvPlaneBytes(dim));
  KvQuantizeRowPlanes(x.data(), dim, 4, row.data(), lo.data());
  std::vector<float> four(dim), two(dim);
  KvDequantizeRow(KvKernel::kQ2p, row.data(), lo.data(), dim, four.data());
  KvDropLoPlane(row.data(), dim);
  KvDequantizeRow(KvKernel::kQ2p, row.data(), nullptr, dim, two.data());
  double e4 = 0, e2 = 0;
  for (int32_t i = 0; i < dim; ++i) {
    e4 += (four[i] - x[i]) * (four[i] - x[i]);
    e2 += (two[i] - x[i]) * (two[i] - x[i]);
    // The 2-bit value is the centre of the four 4-bit codes sharing its hi bits.
    EXPECT_LE(std::fabs(two[i] - four[i]), 2.0f * (std::fabs(four[i]) + 1.0f));
  }
  EXPECT_LT(e4, e2);
  EXPECT_LT(e2 / dim, 0.25);  // a 2-bit grid over ~N(0,1) groups
}

TEST(KvFormat, HeadRotationIsOrthogonal) {
  for (int32_t hd : {8, 48, 64, 12, 7}) {
    auto q = Random(hd, hd), k = Random(hd, hd + 1);
    double dot = 0;
    for (int32_t i = 0; i < hd; ++i) dot += q[i] * k[i];
    auto rq = q, rk = k;
    KvRotate(rq.data(), hd);
    KvRotate(rk.data(), hd);
    double rdot = 0;
    for (int32_t i = 0; i < hd; ++i) rdot += rq[i] * rk[i];
    EXPECT_NEAR(rdot, dot, 1e-4 * (1 + std::fabs(dot))) << hd;
    KvUnrotate(rq.data(), hd);
    for (int32_t i = 0; i < hd; ++i) EXPECT_NEAR(rq[i], q[i], 1e-5) << hd;
  }
}

// Every kernel tier against the scalar reference and against a dequantized fp64
// computation, on odd token counts, head sizes that are and are not multiples of 8 (and
// of 16: the AVX-512 loops split 80 and 256 into register tiles unevenly), and heads that
// straddle 32-channel groups.
TEST(KvKernels, EveryTierMatchesTheReferenceOnOddShapes) {
  struct Shape {
    int32_t hd, heads;
  };
  for (Shape sh : {Shape{8, 4}, Shape{48, 2}, Shape{64, 3}, Shape{12, 3}, Shape{7, 5}, Shape{128, 1},
                   Shape{80, 2}, Shape{256, 1}}) {
    const int32_t dim = sh.hd * sh.heads;
    for (int32_t n : {1, 3, 16, 17, 33, 130}) {
      auto keys = Random(static_cast<int64_t>(n) * dim, 11 + n + dim);
      auto q = Random(kKvMaxGroup * sh.hd, 5 + dim);
      auto p = Random(kKvMaxGroup * n, 3 + n);
      for (auto& x : p) x = std::fabs(x);
      // f32, f16, q8, q4 (planes), q2/q4 mix via lo_slot, q2 (no lo planes at all)
      for (int variant = 0; variant < 6; ++variant) {
        KvType t = variant == 0   ? KvType::kF32
                   : variant == 1 ? KvType::kF16
                   : variant == 2 ? KvType::kQ8
                   : variant == 5 ? KvType::kQ2
                                  : KvType::kQ4;
        const int64_t rb = KvRowBytes(t, dim);
        std::vector<uint8_t> rows(rb * n);
        std::vector<uint8_t> pool;
        std::vector<int32_t> slot;
        KvSpan s;
        s.dim = dim;
        s.n = n;
        s.rows = rows.data();
        s.stride = rb;
        if (variant != 4) {
          for (int32_t i = 0; i < n; ++i) KvQuantizeRow(t, keys.data() + i * dim, dim, rows.data() + i * rb);
          s.kind = KvKernelOf(t);
          if (t == KvType::kQ4) {
            s.lo = rows.data() + KvQ4LoOffset(dim);
            s.lo_stride = rb;
          }
        } else {
          const int64_t rb2 = KvRowBytes(KvType::kQ2, dim);
          rows.assign(rb2 * n, 0);
          pool.assign(KvPlaneBytes(dim) * n, 0);
          slot.resize(n);
          for (int32_t i = 0; i < n; ++i) {
            slot[i] = i % 3 == 1 ? -1 : n - 1 - i;  // every third token 2-bit, planes out of order
            KvQuantizeRowPlanes(keys.data() + i * dim, dim, slot[i] < 0 ? 2 : 4, rows.data() + i * rb2,
                                slot[i] < 0 ? nullptr : pool.data() + slot[i] * KvPlaneBytes(dim));
          }
          s.kind = KvKernel::kQ2p;
          s.stride = rb2;
          s.lo = pool.data();
          s.lo_stride = KvPlaneBytes(dim);
          s.lo_slot = slot.data();
        }
        // fp64 reference over the dequantized rows.
        std::vector<float> deq(static_cast<int64_t>(n) * dim);
        for (int32_t i = 0; i < n; ++i) {
          const uint8_t* lo = nullptr;
          if (s.lo) lo = s.lo_slot ? (s.lo_slot[i] < 0 ? nullptr : s.lo + s.lo_slot[i] * s.lo_stride) : s.lo + i * s.lo_stride;
          KvDequantizeRow(s.kind, s.rows + i * s.stride, lo, dim, deq.data() + i * dim);
        }
        // Queries per call: 1-4 have their own compiled paths in the SIMD tiers, the fp32
        // prefill tiles have up to 8, GQA groups up to kKvMaxGroup.
        for (int32_t nq : {1, 2, 3, 4, 5, 8, kKvMaxGroup}) {
          for (int32_t h = 0; h < sh.heads; ++h) {
            const int64_t off = static_cast<int64_t>(h) * sh.hd;
            ExpectSpanMatchesReference(
                s, deq, off, sh.hd, q, nq, p,
                [&](double ref, double) { return 1e-4 * (1 + std::fabs(ref)) + 1e-4 * sh.hd; },
                "variant " + std::to_string(variant) + " hd " + std::to_string(sh.hd) + " n " + std::to_string(n) +
                    " head " + std::to_string(h) + " nq " + std::to_string(nq));
          }
        }
      }
    }
  }
}

// Key blocks (--kv-key-layout channel): per channel within half a step of that channel's
// range over the block, for block sizes that are and are not the full group.
TEST(KvFormat, KeyBlockRoundTripIsWithinHalfAStepPerChannel) {
  for (int32_t dim : {8, 32, 36, 100}) {
    for (int32_t n : {1, 5, 31, 32}) {
      auto x = Random(static_cast<int64_t>(n) * dim, dim * 7 + n);
      for (int32_t i = 0; i < n; ++i) x[static_cast<int64_t>(i) * dim + dim / 2] *= 20.0f;  // an outlier channel
      for (int bits : {8, 4, 2}) {
        const int64_t crow = bits == 8 ? dim : KvPlaneBytes(dim);
        std::vector<uint8_t> params(KvKeyBlockParamBytes(dim)), codes(crow * n), lo(KvPlaneBytes(dim) * n);
        KvQuantizeKeyBlock(x.data(), n, dim, bits, params.data(), codes.data(), bits == 4 ? lo.data() : nullptr);
        const int levels = bits == 8 ? 255 : bits == 4 ? 15 : 3;
        for (int32_t i = 0; i < n; ++i) {
          std::vector<float> y(dim);
          KvDequantizeKeyRow(params.data(), codes.data() + i * crow, bits == 4 ? lo.data() + i * KvPlaneBytes(dim) : nullptr,
                             bits, dim, y.data());
          for (int32_t e = 0; e < dim; ++e) {
            float a = 1e30f, b = -1e30f;
            for (int32_t j = 0; j < n; ++j) {
              a = std::min(a, x[static_cast<int64_t>(j) * dim + e]);
              b = std::max(b, x[static_cast<int64_t>(j) * dim + e]);
            }
            const float tol = 0.5f * (b - a) / levels * 1.01f + 2e-3f * std::max(std::fabs(a), std::fabs(b));
            EXPECT_NEAR(y[e], x[static_cast<int64_t>(i) * dim + e], tol) << bits << " dim " << dim << " n " << n;
          }
        }
        if (bits == 4) {  // dropping the lo planes: the 2-bit reconstruction, worse but bounded
          KvDropKeyBlockLoPlanes(params.data(), dim);
          double e2 = 0;
          for (int32_t i = 0; i < n; ++i) {
            std::vector<float> y(dim);
            KvDequantizeKeyRow(params.data(), codes.data() + i * crow, nullptr, 2, dim, y.data());
            for (int32_t e = 0; e < dim; ++e) {
              const double d = y[e] - x[static_cast<int64_t>(i) * dim + e];
              e2 += d * d;
            }
          }
          EXPECT_TRUE(std::isfinite(e2));
        }
      }
    }
  }
}

// Key-block spans (per-channel parameters) on every tier against the scalar reference and
// an fp64 computation: spans that start inside a block and have odd lengths, 8/4/2 bits,
// head slices that are and are not multiples of 8, a GQA group of 3 query heads.
TEST(KvKernels, KeyBlockSpansMatchTheReferenceOnEveryTier) {
  struct Shape {
    int32_t hd, heads;
  };
  const int32_t G = kKvTokenGroup;
  for (Shape sh : {Shape{8, 4}, Shape{16, 2}, Shape{64, 3}, Shape{12, 3}, Shape{7, 5}}) {
    const int32_t dim = sh.hd * sh.heads;
    auto keys = Random(static_cast<int64_t>(G) * dim, 21 + dim);
    for (int32_t e = 0; e < dim; e += 5) keys[e] *= 12.0f;  // outliers
    for (int bits : {8, 4, 2}) {
      const int64_t crow = bits == 8 ? dim : KvPlaneBytes(dim);
      std::vector<uint8_t> params(KvKeyBlockParamBytes(dim)), codes(crow * G), lo(KvPlaneBytes(dim) * G);
      KvQuantizeKeyBlock(keys.data(), G, dim, bits, params.data(), codes.data(), bits == 4 ? lo.data() : nullptr);
      for (int32_t r : {0, 3, 17}) {
        for (int32_t n : {1, 3, 14, G - r}) {
          if (r + n > G) continue;
          KvSpan s;
          s.dim = dim;
          s.n = n;
          s.kind = bits == 8 ? KvKernel::kQ8 : KvKernel::kQ2p;
          s.params = params.data();
          s.rows = codes.data() + r * crow;
          s.stride = crow;
          if (bits == 4) {
            s.lo = lo.data() + r * KvPlaneBytes(dim);
            s.lo_stride = KvPlaneBytes(dim);
          }
          std::vector<float> deq(static_cast<int64_t>(n) * dim);
          for (int32_t i = 0; i < n; ++i) {
            KvDequantizeKeyRow(params.data(), s.rows + i * crow, bits == 4 ? s.lo + i * s.lo_stride : nullptr, bits, dim,
                               deq.data() + i * dim);
          }
          auto q = Random(kKvMaxGroup * sh.hd, 5 + dim + n);
          auto p = Random(kKvMaxGroup * n, 3 + n + r);
          for (auto& x : p) x = std::fabs(x);
          for (int32_t nq : {1, 2, 3, 4, 7}) {
            for (int32_t h = 0; h < sh.heads; ++h) {
              const int64_t off = static_cast<int64_t>(h) * sh.hd;
              ExpectSpanMatchesReference(
                  s, deq, off, sh.hd, q, nq, p, [](double, double smag) { return 1e-5 * smag + 1e-5; },
                  "bits " + std::to_string(bits) + " hd " + std::to_string(sh.hd) + " r " + std::to_string(r) +
                      " n " + std::to_string(n) + " nq " + std::to_string(nq));
            }
          }
        }
      }
    }
  }
}

// The channel key layout in the cache: spans cover [0, len) in order on a context that is
// not a multiple of the block (and lengths inside a block), the newest block reads back
// in fp16, older blocks are per-channel 8/4/2-bit, values keep their layout; adaptive
// squat leaves the least-attended key blocks 2-bit; a rewind into a quantized block reads
// back what was rewritten.
TEST(KvCacheChannel, KeyBlocksCoverEveryPositionAndReadBack) {
  const int32_t dim = 40, n_ctx = 203, G = kKvTokenGroup;
  struct Cfg {
    const char* type;
    const char* policy;
  };
  for (Cfg cfg : {Cfg{"q8", "sink-window"}, Cfg{"q4", "sink-window"}, Cfg{"q2", "sink-window"},
                  Cfg{"adaptive", "sink-window"}, Cfg{"adaptive", "squat"}}) {
    KvCacheOptions o;
    ASSERT_TRUE(ParseKvOptions(cfg.type, cfg.policy, 16, 3, &o, false, "channel").ok());
    ASSERT_TRUE(o.key_channels);
    auto c = KvCache::Create(2, 2, n_ctx, dim, 1, o);
    ASSERT_TRUE(c.ok()) << c.status().message();
    auto keys = Random(static_cast<int64_t>(n_ctx) * dim, 77);
    auto vals = Random(static_cast<int64_t>(n_ctx) * dim, 78);
    const std::string name = KvOptionsName(o);
    int32_t rewound_lo = 0, rewound_hi = 0;  // rows that went through their block's old precision
    auto check = [&](int32_t len) {
      int32_t next = 0;
      (*c)->ForEachSpan(1, 1, len, [&](int32_t p0, const KvSpan& ks, const KvSpan& vs) {
        EXPECT_EQ(p0, next) << name;
        EXPECT_EQ(ks.n, vs.n);
        EXPECT_LE(p0 % G + ks.n, G) << "a key span stays inside one block";
        next = p0 + ks.n;
        for (int32_t i = 0; i < ks.n; ++i) {
          const int32_t pos = p0 + i;
          std::vector<float> y(dim);
          const bool newest = pos / G == (len - 1) / G;
          if (newest) {
            ASSERT_EQ(ks.kind, KvKernel::kF16) << name << " pos " << pos;
            KvDequantizeRow(KvKernel::kF16, ks.rows + i * ks.stride, nullptr, dim, y.data());
          } else {
            ASSERT_NE(ks.params, nullptr) << name << " pos " << pos;
            const int bits = ks.kind == KvKernel::kQ8 ? 8 : ks.lo ? 4 : 2;
            if (o.adaptive) {
              EXPECT_EQ(bits == 8, pos / G < (o.sinks + G - 1) / G) << name << " pos " << pos;
            }
            KvDequantizeKeyRow(ks.params, ks.rows + i * ks.stride, ks.lo ? ks.lo + i * ks.lo_stride : nullptr, bits,
                               dim, y.data());
          }
          double err = 0;
          for (int32_t e = 0; e < dim; ++e) err = std::max(err, static_cast<double>(std::fabs(y[e] - keys[pos * dim + e])));
          const int bits = newest ? 16 : ks.kind == KvKernel::kQ8 ? 8 : ks.lo ? 4 : 2;
          const bool rewound = pos >= rewound_lo && pos < rewound_hi;
          EXPECT_LT(err, bits == 16 && !rewound ? 0.01 : bits == 8 ? 0.05 : bits == 4 && !rewound ? 0.6 : 2.5)
              << name << " pos " << pos;
          // Values: per-token rows as before.
          const uint8_t* lo = nullptr;
          if (vs.lo) lo = vs.lo_slot ? (vs.lo_slot[i] < 0 ? nullptr : vs.lo + vs.lo_slot[i] * vs.lo_stride) : vs.lo + i * vs.lo_stride;
          KvDequantizeRow(vs.kind, vs.rows + i * vs.stride, lo, dim, y.data());
          double ev = 0;
          for (int32_t e = 0; e < dim; ++e) ev = std::max(ev, static_cast<double>(std::fabs(y[e] - vals[pos * dim + e])));
          EXPECT_LT(ev, 2.5) << name << " value pos " << pos;
        }
      });
      EXPECT_EQ(next, len) << name;
    };
    for (int32_t pos = 0; pos < n_ctx; ++pos) {
      for (int32_t l = 0; l < 2; ++l) (*c)->Write(l, 1, pos, keys.data() + pos * dim, vals.data() + pos * dim);
      if ((*c)->tracks_importance()) {  // queries look at the even blocks
        float* acc = (*c)->ImportanceScratch(0, 1);
        for (int32_t s = 0; s <= pos; ++s) acc[s] += (s / G) % 2 == 0 ? 0.1f : 0.001f;
        (*c)->CommitImportance(1, pos);
      }
      if (pos == 0 || pos == 31 || pos == 32 || pos == 33 || pos == 100 || pos == n_ctx - 1) check(pos + 1);
    }
    if (std::string(cfg.policy) == "squat") {
      // Some odd (little attended) blocks lost their lo planes, no even block did.
      int32_t odd2 = 0;
      (*c)->ForEachSpan(1, 1, n_ctx, [&](int32_t p0, const KvSpan& ks, const KvSpan&) {
        if (ks.params == nullptr || ks.kind == KvKernel::kQ8 || p0 % G != 0) return;
        const int32_t b = p0 / G;
        if (ks.lo == nullptr) {
          EXPECT_EQ(b % 2, 1) << "block " << b;
          ++odd2;
        }
      });
      EXPECT_GT(odd2, 0);
    }
    // A rewind into a quantized block, then forward again.
    auto keys2 = Random(static_cast<int64_t>(n_ctx) * dim, 79);
    rewound_lo = 32;
    rewound_hi = 45;
    for (int32_t pos = 45; pos < 120; ++pos) {
      for (int32_t l = 0; l < 2; ++l) {
        (*c)->Write(l, 1, pos, keys2.data() + pos * dim, vals.data() + pos * dim);
      }
      std::copy(keys2.begin() + pos * dim, keys2.begin() + (pos + 1) * dim, keys.begin() + pos * dim);
    }
    check(120);
  }
}

// The adaptive cache: spans cover [0, len) in order, each position reads back close to
// what was written, sinks and the window are 8-bit, and squat leaves half the aged
// tokens 2-bit once the pool is full.
TEST(KvCacheAdaptive, SpansCoverEveryPositionWithTheRightPrecision) {
  const int32_t dim = 40, n_ctx = 101;
  for (KvPolicy pol : {KvPolicy::kSinkWindow, KvPolicy::kSquat}) {
    KvCacheOptions o;
    o.adaptive = true;
    o.type = KvType::kQ8;
    o.policy = pol;
    o.window = 16;
    o.sinks = 3;
    auto c = KvCache::Create(2, 2, n_ctx, dim, 1, o);
    ASSERT_TRUE(c.ok()) << c.status().message();
    auto data = Random(static_cast<int64_t>(n_ctx) * dim, 99);
    for (int32_t pos = 0; pos < n_ctx; ++pos) {
      for (int32_t l = 0; l < 2; ++l) (*c)->Write(l, 1, pos, data.data() + pos * dim, data.data() + pos * dim);
      if ((*c)->tracks_importance()) {  // pretend every query looks at even positions
        float* acc = (*c)->ImportanceScratch(0, 1);
        for (int32_t s = 0; s <= pos; ++s) acc[s] += s % 2 == 0 ? 0.1f : 0.001f;
        (*c)->CommitImportance(1, pos);
      }
    }
    int32_t next = 0;
    (*c)->ForEachSpan(1, 1, n_ctx, [&](int32_t p0, const KvSpan& ks, const KvSpan& vs) {
      EXPECT_EQ(p0, next);
      next = p0 + ks.n;
      for (int32_t i = 0; i < ks.n; ++i) {
        const int32_t pos = p0 + i;
        const uint8_t* lo = nullptr;
        if (ks.lo) lo = ks.lo_slot ? (ks.lo_slot[i] < 0 ? nullptr : ks.lo + ks.lo_slot[i] * ks.lo_stride) : ks.lo + i * ks.lo_stride;
        std::vector<float> y(dim);
        KvDequantizeRow(ks.kind, ks.rows + i * ks.stride, lo, dim, y.data());
        const bool hi = pos < o.sinks || pos >= n_ctx - o.window;
        EXPECT_EQ(ks.kind == KvKernel::kQ8, hi) << "pos " << pos;
        double err = 0;
        for (int32_t e = 0; e < dim; ++e) err = std::max(err, static_cast<double>(std::fabs(y[e] - data[pos * dim + e])));
        EXPECT_LT(err, hi ? 0.03 : (lo ? 0.5 : 1.6)) << "pos " << pos;
        if (pol == KvPolicy::kSquat && !hi && ks.kind == KvKernel::kQ2p && pos < n_ctx - o.window - 20) {
          // Odd positions get far less attention: they are the ones left at 2 bits.
          if (pos % 2 == 1) {
            EXPECT_EQ(lo, nullptr) << "pos " << pos;
          }
        }
      }
    });
    EXPECT_EQ(next, n_ctx);
    int64_t counts[3] = {0, 0, 0};
    (*c)->CountPrecisions(1, 1, n_ctx, counts);
    const int64_t aged = n_ctx - o.sinks - o.window;
    EXPECT_EQ(counts[2], o.sinks + o.window);
    if (pol == KvPolicy::kSinkWindow) {
      EXPECT_EQ(counts[1], aged);
    } else {
      const int64_t cap = (aged + 1) / 2;
      EXPECT_LE(counts[1], cap);
      EXPECT_GE(counts[1], cap - cap / 8);
      EXPECT_EQ(counts[0], aged - counts[1]);
    }
  }
}

std::unique_ptr<Model> Stories() {
  const std::string dir = test::SourceDir() + "/models/stories260K/";
  auto m = LoadModel({dir + "stories260K.bin", dir + "tok512.bin"});
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// Logits of the whole model over each KV format stay close to the fp32-KV logits, closer
// for more bits; chunked prefill and token-by-token decode agree.
TEST(KvCacheModel, FormatsTrackTheFp32Cache) {
  auto model = Stories();
  ASSERT_NE(model, nullptr);
  const int32_t V = model->config.vocab_size, n = 300;
  std::vector<int32_t> toks(n);
  for (int32_t i = 0; i < n; ++i) toks[i] = (i * 37 + 11) % V;
  ThreadPool pool(2);
  auto ref = LlamaGraph::Create(*model, 512, 64, &pool);
  ASSERT_TRUE(ref.ok());
  std::vector<float> base(static_cast<size_t>(n) * V), got(base.size());
  ASSERT_TRUE((*ref)->Forward(toks.data(), n, 0, true, base.data()).ok());
  double prev = 0;
  for (const char* name : {"f16", "q8", "q4", "q2", "q4+rot"}) {
    KvCacheOptions o;
    const bool rot = std::string(name) == "q4+rot";
    if (rot) prev = 0;
    ASSERT_TRUE(ParseKvOptions(rot ? "q4" : name, "sink-window", 32, 4, &o, rot).ok());
    auto g = LlamaGraph::Create(*model, 512, 64, &pool, 1, o);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->Forward(toks.data(), n, 0, true, got.data()).ok());
    double err = 0, emax = 0;
    for (size_t i = 0; i < base.size(); ++i) {
      err += std::fabs(base[i] - got[i]);
      emax = std::max(emax, static_cast<double>(std::fabs(base[i] - got[i])));
    }
    err /= base.size();
    std::printf("kv %s: mean |logit error| %.5f, max %.4f\n", name, err, emax);
    EXPECT_GT(err, prev) << name;  // fewer bits, larger error
    EXPECT_LT(err, std::string(name) == "f16" ? 0.004 : std::string(name) == "q8" ? 0.15 : 2.5) << name;
    if (rot) {
      EXPECT_GT(err, 0.0);  // rotation went through: still a 4-bit cache
    }
    prev = err;
    // Token-by-token decode reads the same cache the same way.
    auto g1 = LlamaGraph::Create(*model, 512, 1, &pool, 1, o);
    ASSERT_TRUE(g1.ok());
    std::vector<float> one(V);
    for (int32_t i = 0; i < n; ++i) ASSERT_TRUE((*g1)->Forward(&toks[i], 1, i, false, one.data()).ok());
    for (int32_t j = 0; j < V; ++j) EXPECT_NEAR(one[j], got[static_cast<size_t>(n - 1) * V + j], 1e-3) << name;
  }
}

// The channel key layout over the whole model: closer to the fp32 cache than the token
// layout at 4 bits on stories260K (its outlier key channels), and prefill in chunks of
// odd sizes, one whole prefill and token-by-token decode give the same logits (a query
// sees its own key block in fp16 and older blocks quantized in every path).
TEST(KvCacheModel, ChannelKeysPrefillEqualsDecode) {
  auto model = Stories();
  ASSERT_NE(model, nullptr);
  const int32_t V = model->config.vocab_size, n = 150;
  std::vector<int32_t> toks(n);
  for (int32_t i = 0; i < n; ++i) toks[i] = (i * 37 + 11) % V;
  ThreadPool pool(2);
  auto ref = LlamaGraph::Create(*model, 512, 64, &pool);
  ASSERT_TRUE(ref.ok());
  std::vector<float> base(static_cast<size_t>(n) * V);
  ASSERT_TRUE((*ref)->Forward(toks.data(), n, 0, true, base.data()).ok());
  double err_tok = 0;
  for (const char* name : {"q4", "q4+kc", "q2+kc", "q8+kc", "adaptive+kc"}) {
    const std::string nm = name;
    const bool kc = nm.size() > 3 && nm.substr(nm.size() - 3) == "+kc";
    KvCacheOptions o;
    ASSERT_TRUE(ParseKvOptions(kc ? nm.substr(0, nm.size() - 3) : nm, "squat", 16, 4, &o, false,
                               kc ? "channel" : "token").ok());
    auto g = LlamaGraph::Create(*model, 512, 150, &pool, 1, o);
    ASSERT_TRUE(g.ok());
    std::vector<float> got(base.size());
    ASSERT_TRUE((*g)->Forward(toks.data(), n, 0, true, got.data()).ok());
    double err = 0;
    for (size_t i = 0; i < base.size(); ++i) err += std::fabs(base[i] - got[i]);
    err /= base.size();
    std::printf("kv %s: mean |logit error| %.5f\n", name, err);
    if (nm == "q4") err_tok = err;
    if (nm == "q4+kc") {
      EXPECT_LT(err, err_tok);
    }
    if (o.adaptive) continue;  // its value ring ages differently in one prefill than in decode
    // Chunks of 7, 25, 40, ... tokens, then decode token by token.
    auto g2 = LlamaGraph::Create(*model, 512, 64, &pool, 1, o);
    ASSERT_TRUE(g2.ok());
    std::vector<float> chunk(static_cast<size_t>(64) * V);
    int32_t p = 0;
    for (int32_t sz : {7, 25, 40, 1, 33}) {
      ASSERT_TRUE((*g2)->Forward(toks.data() + p, sz, p, true, chunk.data()).ok());
      for (int32_t i = 0; i < sz; ++i) {
        for (int32_t j = 0; j < V; j += 7) {
          EXPECT_NEAR(chunk[static_cast<size_t>(i) * V + j], got[static_cast<size_t>(p + i) * V + j], 1e-3)
              << name << " pos " << p + i;
        }
      }
      p += sz;
    }
    std::vector<float> one(V);
    for (; p < n; ++p) {
      ASSERT_TRUE((*g2)->Forward(&toks[p], 1, p, false, one.data()).ok());
      for (int32_t j = 0; j < V; j += 7) EXPECT_NEAR(one[j], got[static_cast<size_t>(p) * V + j], 1e-3) << name << " pos " << p;
    }
  }
}

TEST(KvCacheModel, AdaptiveIsBetweenQ8AndQ4AndReportsItsBytes) {
  auto model = Stories();
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config;
  ThreadPool pool(2);
  KvCacheOptions f16, q4, ad;
  ASSERT_TRUE(ParseKvOptions("f16", "sink-window", 32, 4, &f16).ok());
  ASSERT_TRUE(ParseKvOptions("q4", "sink-window", 32, 4, &q4).ok());
  ASSERT_TRUE(ParseKvOptions("adaptive", "squat", 32, 4, &ad).ok());
  auto gf = LlamaGraph::Create(*model, 512, 64, &pool, 1, f16);
  auto gq = LlamaGraph::Create(*model, 512, 64, &pool, 1, q4);
  auto ga = LlamaGraph::Create(*model, 512, 64, &pool, 1, ad);
  ASSERT_TRUE(gf.ok() && gq.ok() && ga.ok());
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  EXPECT_EQ((*gf)->KvBytes(), static_cast<uint64_t>(2 * 2 * kv_dim * 512 * c.n_layers));
  EXPECT_LT((*ga)->KvBytes(), (*gf)->KvBytes());
  EXPECT_LT((*gq)->KvBytes(), (*gf)->KvBytes() / 3 + 1);
  // Prefill in chunks and decode through the window edge: no crash, finite logits.
  std::vector<int32_t> toks(400);
  for (int32_t i = 0; i < 400; ++i) toks[i] = (i * 13 + 5) % c.vocab_size;
  std::vector<float> logits(c.vocab_size);
  ASSERT_TRUE((*ga)->Forward(toks.data(), 390, 0, false, logits.data()).ok());
  for (int32_t i = 390; i < 400; ++i) ASSERT_TRUE((*ga)->Forward(&toks[i], 1, i, false, logits.data()).ok());
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
  int64_t counts[3] = {0, 0, 0};
  (*ga)->KvPrecisionCounts(0, 400, counts);
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 400 * c.n_layers);
  EXPECT_EQ(counts[2], 36 * c.n_layers);
  EXPECT_GT(counts[0], 0);
}

// Past the context: an explicit -n that does not fit is an error naming --ctx-shift;
// with ctx_shift the session keeps the sinks and the newer half and goes on; -1 stops.
TEST(KvCacheModel, ContextShiftKeepsGoingOtherwiseAClearError) {
  auto model = Stories();
  ASSERT_NE(model, nullptr);
  auto tok = Tokenizer::Create(model->tokenizer_data);
  ASSERT_TRUE(tok.ok());
  for (const char* kv : {"f32", "q8", "adaptive", "q4+kc", "adaptive+kc"}) {
    SessionOptions so;
    so.n_ctx = 64;
    so.n_threads = 1;
    const std::string nm = kv;
    const bool kc = nm.size() > 3 && nm.substr(nm.size() - 3) == "+kc";  // shifts rewind into key blocks
    ASSERT_TRUE(ParseKvOptions(kc ? nm.substr(0, nm.size() - 3) : nm, "squat", 16, 4, &so.kv, false,
                               kc ? "channel" : "token").ok());
    GenerateOptions go;
    go.n_predict = 200;
    go.ignore_eos = true;
    go.sampler.temperature = 0;
    auto noop = [](const std::string&) { return true; };
    {
      auto s = Session::Create(*model, **tok, so);
      ASSERT_TRUE(s.ok());
      GenerateStats st;
      Status r = (*s)->Generate({(*tok)->bos()}, go, noop, &st);
      EXPECT_FALSE(r.ok()) << kv;
      EXPECT_NE(r.message().find("--ctx-shift"), std::string::npos) << r.message();
    }
    {
      so.ctx_shift = true;
      auto s = Session::Create(*model, **tok, so);
      ASSERT_TRUE(s.ok());
      GenerateStats st;
      Status r = (*s)->Generate({(*tok)->bos()}, go, noop, &st);
      ASSERT_TRUE(r.ok()) << r.message();
      EXPECT_EQ(st.n_generated, 200) << kv;
      EXPECT_GE(st.n_shifts, 3) << kv;
      EXPECT_LT((*s)->pos(), 64);
      EXPECT_EQ((*s)->history()[0], (*tok)->bos());  // the sinks stay
    }
    {
      so.ctx_shift = false;
      go.n_predict = -1;
      auto s = Session::Create(*model, **tok, so);
      ASSERT_TRUE(s.ok());
      GenerateStats st;
      ASSERT_TRUE((*s)->Generate({(*tok)->bos()}, go, noop, &st).ok());  // "until the context is full"
      EXPECT_EQ(st.n_generated, 64);
      EXPECT_EQ(st.n_shifts, 0);
    }
  }
}

uint64_t RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, rss = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &rss);
  std::fclose(f);
  return got == 2 ? rss * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// A session's resident memory grows by no more than its reported KV bytes plus its
// activation arena and a fixed allowance (logits, thread stacks, small vectors), and by
// at least most of the KV bytes (the figure is not an underestimate). The context is
// made long (64k positions on stories260K) so that the cache dominates.
TEST(KvCacheModel, SessionMemoryStaysWithinKvBytesPlusArena) {
  if (RssBytes() == 0) GTEST_SKIP() << "no /proc/self/statm";
  // A fixed mmap threshold: glibc would otherwise raise it after the first large free and
  // serve later caches from the heap, whose freed pages stay resident.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  auto model = Stories();
  ASSERT_NE(model, nullptr);
  model->config.context_length = 65536;
  auto tok = Tokenizer::Create(model->tokenizer_data);
  ASSERT_TRUE(tok.ok());
  for (const char* name : {"f32", "f16", "q8", "q4", "adaptive", "q4+kc", "adaptive+kc"}) {
    for (const char* policy : {"sink-window", "squat"}) {
      const std::string nm = name;
      const bool kc = nm.size() > 3 && nm.substr(nm.size() - 3) == "+kc";
      const std::string type = kc ? nm.substr(0, nm.size() - 3) : nm;
      if (type != "adaptive" && std::string(policy) == "squat") continue;
      SessionOptions so;
      so.n_ctx = 65536;
      so.n_threads = 2;
      ASSERT_TRUE(ParseKvOptions(type, policy, 64, 4, &so.kv, false, kc ? "channel" : "token").ok());
      malloc_trim(0);
      const uint64_t before = RssBytes();
      auto s = Session::Create(*model, **tok, so);
      ASSERT_TRUE(s.ok()) << s.status().message();
      LlamaGraph& g = (*s)->graph();
      g.FillKvForBench(0, 65535);
      std::vector<float> logits(model->config.vocab_size);
      int32_t t = 1;
      ASSERT_TRUE(g.Forward(&t, 1, 65535, false, logits.data()).ok());
      const uint64_t grown = RssBytes() - before;
      const uint64_t fixed = 4u << 20;
      EXPECT_LE(grown, g.KvBytes() + g.ArenaBytes() + fixed)
          << name << "/" << policy << ": kv " << g.KvBytes() << " arena " << g.ArenaBytes();
      EXPECT_GE(grown, g.KvBytes() * 9 / 10) << name << "/" << policy;
      std::printf("kv %-22s kv_bytes %10llu (%.1f B/token)  arena %8llu  RSS growth %10llu\n",
                  KvOptionsName(so.kv).c_str(), static_cast<unsigned long long>(g.KvBytes()), g.KvBytesPerToken(),
                  static_cast<unsigned long long>(g.ArenaBytes()), static_cast<unsigned long long>(grown));
    }
  }
}

}  // namespace
}  // namespace edgeq
