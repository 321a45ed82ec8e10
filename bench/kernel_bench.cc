// google-benchmark micro-benchmarks of the matrix kernels, per tier. Reported as
// bytes/s of weights read (bytes_per_second) and integer GOPS (2 ops per multiply-add,
// counter "GOPS"), in wall-clock time; /t1 and /t2 are 1 and 2 threads. Decode (n_tok = 1) runs over a rotating set of matrices totalling
// ~256 MiB so that every read comes from DRAM, as in a large model's decode; prefill
// tiles (n_tok > 1) over one matrix, which is compute-bound.
//
//   build/bench/edgeq_kernel_bench --benchmark_filter=w4g128 --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "format/eq_types.h"
#include "kernels/kernels.h"
#include "kernels/kv.h"
#include "kernels/packed.h"

namespace edgeq {
namespace {

struct Matrices {
  EqType type;
  int64_t rows, cols;
  std::vector<std::vector<uint8_t>> packed;  // one or more copies (DRAM streaming)
  uint64_t bytes = 0;                        // of one copy
};

Matrices Make(const KernelTable& kt, EqType type, int64_t rows, int64_t cols, uint64_t total_bytes) {
  Matrices m{type, rows, cols, {}, 0};
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const uint64_t rb = *EqRowBytes(type, cols);
  std::vector<float> w(cols);
  std::vector<uint8_t> rowq(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : w) v = nd(rng);
    (void)QuantizeRowEq(type, w.data(), rowq.data() + r * rb, cols, nullptr);
  }
  m.bytes = kt.packed_eq_bytes(type, rows, cols);
  const uint64_t copies = std::max<uint64_t>(1, total_bytes / m.bytes);
  for (uint64_t i = 0; i < copies; ++i) {
    m.packed.emplace_back(m.bytes);
    kt.pack_eq(type, rowq.data(), rb, rows, cols, m.packed.back().data());
  }
  return m;
}

void BM_Gemm(benchmark::State& state, const char* tier, EqType type, int64_t rows, int64_t cols, int64_t n_tok,
             int threads, bool resident) {
  const KernelTable* kt = KernelsForTier(tier);
  if (kt == nullptr) {
    state.SkipWithError("tier not available on this CPU");
    return;
  }
  // Decode of a big matrix streams from DRAM; small matrices stay cache-resident as in a
  // small model's decode.
  const uint64_t total = n_tok == 1 && rows * cols > (1 << 22) && !resident ? (256ull << 20) : 0;
  Matrices m = Make(*kt, type, rows, cols, total);
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_tok * cols);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> amem(QuantActBytes(n_tok, cols));
  QuantAct a = MakeQuantAct(amem.data(), n_tok, cols);
  kt->quantize_act(x.data(), cols, n_tok, cols, &a);
  std::vector<float> y(n_tok * rows);
  const int64_t groups = (rows + kt->pack_rows - 1) / kt->pack_rows;
  size_t i = 0;
  ThreadPool pool(threads);  // as ops/MatMul splits row groups: dynamic chunks
  const int64_t chunk = std::max<int64_t>(1, groups / (threads * 8));
  for (auto _ : state) {
    const uint8_t* w = m.packed[i].data();
    pool.ParallelForDynamic(groups, chunk, [&](int, int64_t g0, int64_t g1) {
      kt->gemm_eq_packed(type, w, rows, cols, g0, g1, a, n_tok, y.data(), rows);
    });
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % m.packed.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.bytes));
  state.counters["GOPS"] = benchmark::Counter(2.0 * rows * cols * n_tok * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_QuantizeAct(benchmark::State& state, const char* tier, int64_t n_tok, int64_t cols) {
  const KernelTable* kt = KernelsForTier(tier);
  if (kt == nullptr) {
    state.SkipWithError("tier not available on this CPU");
    return;
  }
  std::vector<float> x(n_tok * cols, 0.5f);
  for (int64_t i = 0; i < n_tok * cols; ++i) x[i] = static_cast<float>((i * 37) % 101) - 50.0f;
  std::vector<uint8_t> amem(QuantActBytes(n_tok, cols));
  QuantAct a = MakeQuantAct(amem.data(), n_tok, cols);
  for (auto _ : state) {
    kt->quantize_act(x.data(), cols, n_tok, cols, &a);
    benchmark::DoNotOptimize(a.q);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n_tok * cols * sizeof(float)));
}

// One block of the fp32 path's attention for one head: kv_scores then kv_accum of nq
// consecutive queries over n positions of a 6-head cache (stories15m: head_dim 48), as
// LlamaGraph::Attention calls them; for the quantized types (q8, q4) one run of n
// positions as LlamaGraph::AttendQuantized reads it. Counter "ns/qpos": per query and
// position.
void BM_KvBlock(benchmark::State& state, const char* tier, KvType type, int32_t hd, int32_t nq, int32_t n) {
  const KernelTable* kt = KernelsForTier(tier);
  if (kt == nullptr) {
    state.SkipWithError("tier not available on this CPU");
    return;
  }
  const int32_t heads = 6, dim = heads * hd;
  const KvKernel kind = KvKernelOf(type);
  const int64_t rb = KvRowBytes(type, dim);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(dim);
  std::vector<uint8_t> keys(rb * n), values(rb * n);
  for (int32_t i = 0; i < n; ++i) {
    for (auto& v : x) v = nd(rng);
    KvQuantizeRow(type, x.data(), dim, keys.data() + i * rb);
    for (auto& v : x) v = nd(rng);
    KvQuantizeRow(type, x.data(), dim, values.data() + i * rb);
  }
  std::vector<float> q(static_cast<int64_t>(nq) * dim), att(static_cast<int64_t>(nq) * n), out(q.size(), 0.0f);
  for (auto& v : q) v = nd(rng);
  KvSpan s;
  s.kind = kind;
  s.dim = dim;
  s.n = n;
  s.stride = rb;
  const int64_t off = 2 * hd;
  const int64_t lo_off = KvQ4LoOffset(dim);
  s.lo_stride = rb;
  for (auto _ : state) {
    s.rows = keys.data();
    if (type == KvType::kQ4) s.lo = keys.data() + lo_off;
    kt->kv_scores(s, off, hd, q.data() + off, nq, dim, 0.1f, att.data(), n);
    s.rows = values.data();
    if (type == KvType::kQ4) s.lo = values.data() + lo_off;
    kt->kv_accum(s, off, hd, att.data(), nq, n, out.data() + off, dim);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ns/qpos"] = benchmark::Counter(static_cast<double>(state.iterations()) * nq * n,
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The fp32 path's kernel calls of one layer's causal prefill (LlamaGraph::Attention without
// the softmax): n_tok positions, 6 heads of hd, tiles of `tile` queries, blocks of 64.
void BM_KvPrefill(benchmark::State& state, const char* tier, int32_t hd, int32_t tile, int32_t n_tok) {
  const KernelTable* kt = KernelsForTier(tier);
  if (kt == nullptr) {
    state.SkipWithError("tier not available on this CPU");
    return;
  }
  const int32_t heads = 6, dim = heads * hd, block = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> k(static_cast<int64_t>(n_tok) * dim), v(k.size()), q(k.size()), out(k.size());
  for (auto* x : {&k, &v, &q}) {
    for (auto& e : *x) e = nd(rng);
  }
  std::vector<float> att(static_cast<int64_t>(tile) * block, 0.01f);
  KvSpan s;
  s.kind = KvKernel::kF32;
  s.dim = dim;
  s.stride = dim * static_cast<int64_t>(sizeof(float));
  for (auto _ : state) {
    for (int32_t t0 = 0; t0 < n_tok; t0 += tile) {
      const int32_t nq = std::min(tile, n_tok - t0);
      for (int32_t h = 0; h < heads; ++h) {
        const int64_t off = static_cast<int64_t>(h) * hd;
        for (int32_t p0 = 0; p0 < t0 + nq; p0 += block) {
          s.n = std::min(block, t0 + nq - p0);
          s.rows = reinterpret_cast<const uint8_t*>(k.data() + static_cast<int64_t>(p0) * dim);
          kt->kv_scores(s, off, hd, q.data() + t0 * dim + off, nq, dim, 0.1f, att.data(), block);
          s.rows = reinterpret_cast<const uint8_t*>(v.data() + static_cast<int64_t>(p0) * dim);
          kt->kv_accum(s, off, hd, att.data(), nq, block, out.data() + t0 * dim + off, dim);
        }
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
}

// The fused producers over n_tok token rows of `cols` (one call per row, as the graph
// makes them). SwiGLU works in place: each call first copies its row of gates back from
// a pristine copy (included in the time: ~cols*4 bytes from L1), or repeated calls
// would drive the values to Inf/NaN or subnormals.
void BM_FusedQuant(benchmark::State& state, const char* tier, bool swiglu, int64_t n_tok, int64_t cols) {
  const KernelTable* kt = KernelsForTier(tier);
  if (kt == nullptr) {
    state.SkipWithError("tier not available on this CPU");
    return;
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(n_tok * cols), w(cols), y(n_tok * cols), out(n_tok * cols);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  for (auto& v : y) v = nd(rng);
  std::vector<uint8_t> amem(QuantActBytes(n_tok, cols));
  QuantAct a = MakeQuantAct(amem.data(), n_tok, cols);
  for (auto _ : state) {
    for (int64_t t = 0; t < n_tok; ++t) {
      if (swiglu) {
        std::copy_n(x.data() + t * cols, cols, out.data() + t * cols);
        kt->swiglu_quant_act(out.data() + t * cols, y.data() + t * cols, cols, &a, t);
      } else {
        kt->norm_quant_act(x.data() + t * cols, w.data(), 0.37f, out.data() + t * cols, cols, &a, t);
      }
    }
    benchmark::DoNotOptimize(a.q);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n_tok * cols * sizeof(float)));
}

int Register() {
  struct T {
    const char* name;
    EqType type;
  };
  const T types[] = {{"w4g128", EqType::kW4G128}, {"w4g32", EqType::kW4G32}, {"w8c", EqType::kW8C}};
  for (const char* tier : {"generic", "avx2", "avxvnni", "avx512vnni"}) {
    if (KernelsForTier(tier) == nullptr) continue;
    for (const T& t : types) {
      // tinyllama-1.1b's FFN up/gate shape (5632 x 2048): decode from DRAM, prefill tiles;
      // stories15m's FFN shapes (768 x 288, 288 x 768): cache-resident, overhead-bound.
      const int64_t shapes[][2] = {{5632, 2048}, {768, 288}, {288, 768}};
      for (const auto& sh : shapes) {
        for (int64_t n_tok : {1, 4, 16, 64, 128}) {
          if (std::string(tier) == "generic" && n_tok > 4) continue;
          if (sh[0] != 5632 && n_tok != 1 && n_tok != 128) continue;
          for (int threads : {1, 2}) {
            const std::string name = std::string("gemm/") + tier + "/" + t.name + "/" + std::to_string(sh[0]) + "x" +
                                     std::to_string(sh[1]) + "/tok" + std::to_string(n_tok) + "/t" +
                                     std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, tier, t.type, sh[0], sh[1], n_tok, threads, false)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
          }
        }
      }
    }
    // stories15m's classifier (32000 x 288, 8-bit: 9.2 MB), read once per decoded token from
    // the last-level cache: most of that model's decode time.
    for (int threads : {1, 2}) {
      const std::string name = std::string("gemm/") + tier + "/w8c/32000x288/tok1/t" + std::to_string(threads) +
                               "/resident";
      benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, tier, EqType::kW8C, 32000, 288, 1, threads, true)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
    // Activation quantizers at stories15m's (288, 768) and tinyllama's (2048, 5632) widths.
    for (int64_t cols : {288, 768, 2048, 5632}) {
      for (int64_t n_tok : {1, 64}) {
        const std::string w = "/" + std::to_string(cols) + "/tok" + std::to_string(n_tok);
        benchmark::RegisterBenchmark(("quantize_act/" + std::string(tier) + w).c_str(), BM_QuantizeAct, tier, n_tok,
                                     cols)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("norm_quant_act/" + std::string(tier) + w).c_str(), BM_FusedQuant, tier, false,
                                     n_tok, cols)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("swiglu_quant_act/" + std::string(tier) + w).c_str(), BM_FusedQuant, tier, true,
                                     n_tok, cols)
            ->Unit(benchmark::kMicrosecond);
      }
    }
    for (int32_t tile : {1, 4, 8, 16}) {
      const std::string name = std::string("kv_prefill/") + tier + "/hd48/tile" + std::to_string(tile) + "/tok128";
      benchmark::RegisterBenchmark(name.c_str(), BM_KvPrefill, tier, 48, tile, 128)->Unit(benchmark::kMicrosecond);
    }
    for (KvType type : {KvType::kF32, KvType::kF16}) {
      for (int32_t hd : {48, 64, 128}) {
        for (int32_t nq : {1, 4, 8, 16}) {
          for (int32_t n : {64, 37}) {
            const std::string name = std::string("kv_block/") + tier + "/" + KvTypeName(type) + "/hd" +
                                     std::to_string(hd) + "/nq" + std::to_string(nq) + "/n" + std::to_string(n);
            benchmark::RegisterBenchmark(name.c_str(), BM_KvBlock, tier, type, hd, nq, n)->Unit(benchmark::kNanosecond);
          }
        }
      }
    }
    // The quantized cache's decode: a GQA group (tinyllama: 8 heads of 64) over a run
    // of 1536 positions, and one head (MHA models).
    for (KvType type : {KvType::kF16, KvType::kQ8, KvType::kQ4}) {
      for (int32_t hd : {64, 128}) {
        for (int32_t nq : {1, 8}) {
          const std::string name = std::string("kv_block/") + tier + "/" + KvTypeName(type) + "/hd" +
                                   std::to_string(hd) + "/nq" + std::to_string(nq) + "/n1536";
          benchmark::RegisterBenchmark(name.c_str(), BM_KvBlock, tier, type, hd, nq, 1536)
              ->Unit(benchmark::kNanosecond);
        }
      }
    }
  }
  return 0;
}
const int kRegistered = Register();

}  // namespace
}  // namespace edgeq

BENCHMARK_MAIN();
