// edgeq bench: llama-bench-style prompt-processing (ppN) and generation (tgN)
// throughput, on a model file or on random weights in a real model's shapes.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli/common.h"
#include "core/membw.h"
#include "format/tensor_types.h"
#include "kernels/kernels.h"
#include "model/convert.h"
#include "model/dummy.h"
#include "model/llama.h"
#include "model/quantize.h"
#include "nlohmann/json.hpp"

namespace edgeq::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  std::string dummy;
  std::string dummy_type = "f16";
  std::string gguf_out;
  std::string scheme;  // quantize in memory first (w8a8, w4a8-g128, ...)
  std::vector<int32_t> n_prompt = {128};
  std::vector<int32_t> n_gen = {64};
  std::vector<int32_t> threads;
  std::vector<int32_t> depth = {0};  // -d: positions already in the KV cache before a tg test
  KvFlags kv;
  int32_t reps = 5;
  bool json = false;
  bool membw = false;
  double membw_gbps = 0;  // if given, skip measuring
  bool profile = false;   // time each step of the forward pass
};

struct Stat {
  double mean = 0, sd = 0;
  std::vector<double> samples;
};

Stat Summarize(std::vector<double> v) {
  Stat s;
  s.samples = v;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / (v.size() - 1)) : 0;
  return s;
}

// The step timings of one test (ForwardProfile, summed over its timed repetitions), per
// token: JSON {"ms_per_token": {step: ms}, "weight_gbps": {matrix step: GB/s},
// "forward_ms_per_token", "unprofiled_ms_per_token" (forward time outside the steps),
// "tokens"}, and one line on stderr.
nlohmann::json ReportProfile(const ForwardProfile& p, const std::string& test) {
  nlohmann::json j;
  if (p.tokens == 0) return j;
  const double per = 1e3 / static_cast<double>(p.tokens);
  double steps = 0;
  std::string line = "edgeq: " + test + " profile, ms per token:";
  for (int s = 0; s < ForwardProfile::kSteps; ++s) {
    const char* name = ForwardProfile::Name(s);
    j["ms_per_token"][name] = p.seconds[s] * per;
    steps += p.seconds[s];
    char buf[96];
    std::snprintf(buf, sizeof buf, " %s %.3f", name, p.seconds[s] * per);
    line += buf;
    if (p.weight_bytes[s] > 0 && p.seconds[s] > 0) {
      const double gbps = p.weight_bytes[s] / p.seconds[s] / 1e9;
      j["weight_gbps"][name] = gbps;
      std::snprintf(buf, sizeof buf, " (%.1f GB/s)", gbps);
      line += buf;
    }
  }
  const double forward_ms = p.total_seconds * per, outside_ms = (p.total_seconds - steps) * per;
  j["forward_ms_per_token"] = forward_ms;
  j["unprofiled_ms_per_token"] = outside_ms;
  j["tokens"] = p.tokens;
  char buf[96];
  std::snprintf(buf, sizeof buf, "; forward %.3f, of which outside the steps %.3f\n", forward_ms, outside_ms);
  std::fputs((line + buf).c_str(), stderr);
  return j;
}

uint64_t PeakRssBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

// Starts the peak-RSS high-water mark again from the current RSS (Linux: "5" to
// /proc/self/clear_refs). False where the system has no such reset.
bool ResetPeakRss() {
#if defined(__linux__)
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool wrote = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && wrote;
#else
  return false;
#endif
}

int Run(BenchFlags& f) {
  std::unique_ptr<Model> model;
  if (!f.dummy.empty()) {
    if (f.model.verbose) LogKernelTier();
    GgmlType t = f.dummy_type == "f32" ? GgmlType::kF32 : GgmlType::kF16;
    if (f.dummy_type != "f32" && f.dummy_type != "f16") return Fail("--dummy-type must be f16 or f32");
    auto m = MakeDummyModel(f.dummy, t, 1234);
    if (!m.ok()) return Fail(m.status());
    model = std::move(m).value();
    if (!f.gguf_out.empty()) {
      ConvertOptions co;
      co.type = GgmlType::kF16;
      Status st = WriteModelGguf(*model, f.gguf_out, co);
      if (!st.ok()) return Fail(st);
      std::fprintf(stderr, "edgeq: wrote %s (F16, random weights, shape %s)\n", f.gguf_out.c_str(), f.dummy.c_str());
      return 0;
    }
  } else {
    ApplyDefaultModel(&f.model);
    auto loaded = LoadModelAndTokenizer(f.model);
    if (!loaded.ok()) return Fail(loaded.status());
    model = std::move(loaded->model);
  }
  std::unique_ptr<Model> source;  // the unquantized model a quantized one points into
  if (!f.scheme.empty()) {
    std::fprintf(stderr, "edgeq: quantizing to %s in memory...\n", f.scheme.c_str());
    auto q = QuantizeInMemory(*model, f.scheme, f.threads.empty() ? 2 : f.threads.back());
    if (!q.ok()) return Fail(q.status());
    source = std::move(model);
    model = std::move(q).value();
  }
  // --kv-type may list several formats (f16,q8,q4): the tests then alternate between them
  // repetition by repetition, so that a shared machine's drift hits all alike.
  std::vector<KvCacheOptions> kvs;
  for (size_t at = 0; at <= f.kv.type.size();) {
    size_t comma = f.kv.type.find(',', at);
    if (comma == std::string::npos) comma = f.kv.type.size();
    KvFlags one = f.kv;
    one.type = f.kv.type.substr(at, comma - at);
    auto kv = ToKvOptions(one);
    if (!kv.ok()) return Fail(kv.status());
    kvs.push_back(*kv);
    at = comma + 1;
  }
  const int32_t max_d = *std::max_element(f.depth.begin(), f.depth.end());
  if (*std::min_element(f.depth.begin(), f.depth.end()) < 0) return Fail("-d must not be negative");
  {
    const int32_t need = std::max(*std::max_element(f.n_prompt.begin(), f.n_prompt.end()),
                                  max_d + *std::max_element(f.n_gen.begin(), f.n_gen.end())) + 1;
    // Random weights have no trained context: a dummy model runs at any depth asked.
    if (!f.dummy.empty() && need > model->config.context_length) model->config.context_length = need;
  }
  const ModelConfig& c = model->config;
  if (f.threads.empty()) f.threads = {f.model.threads > 0 ? f.model.threads : 2};
  double membw = f.membw_gbps;
  // peak_rss_bytes is the engine's: the bandwidth probe's 2 GiB buffer (freed when it
  // returns) is left out by taking the peak before it and restarting the high-water mark
  // after it. Where the mark cannot be restarted the JSON says the probe is included.
  uint64_t peak_before_probe = 0;
  bool peak_includes_probe = false;
  if (f.membw && membw <= 0) {
    peak_before_probe = PeakRssBytes();
    auto r = MeasureReadBandwidth(size_t{2} << 30, f.threads.back(), 5);
    membw = r.gbps;
    std::fprintf(stderr, "edgeq: measured read bandwidth %.1f GB/s (%d threads, 2 GiB, best of 5)\n", membw, r.threads);
    peak_includes_probe = !ResetPeakRss();
  }
  const uint64_t weight_bytes = model->WeightBytes();
  uint64_t params = 0, stored = 0;
  auto add = [&](const Tensor2D& t) {
    if (t.empty()) return;
    params += static_cast<uint64_t>(t.rows) * t.cols;
    stored += t.row_bytes * t.rows;
  };
  add(model->weights.token_embd);
  if (!c.tied_embeddings) add(model->weights.output);
  for (const auto& l : model->weights.layers) {
    for (const Tensor2D* t : l.Matrices()) add(*t);
  }
  const double bpw = params ? 8.0 * stored / params : 0;
  const std::string scheme = f.scheme.empty() ? TypeName(model->weights.wq_type()) : f.scheme;
  const std::string name = f.dummy.empty() ? model->path : f.dummy;

  nlohmann::json out = nlohmann::json::array();
  if (!f.json) {
    std::printf("| %-22s | %-8s | %10s | %5s | %7s | %-8s | %8s | %14s | %18s |\n", "model", "scheme", "size", "bpw",
                "threads", "kv", "kv B/tok", "test", "t/s");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(10, '-').c_str(),
                std::string(12, '-').c_str(), std::string(7, '-').c_str(), std::string(9, '-').c_str(),
                std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(16, '-').c_str(),
                std::string(20, '-').c_str());
  }
  for (int32_t threads : f.threads) {
    ThreadPool pool(threads);
    int32_t max_p = *std::max_element(f.n_prompt.begin(), f.n_prompt.end());
    int32_t max_g = *std::max_element(f.n_gen.begin(), f.n_gen.end());
    const int32_t n_ctx = std::min(c.context_length, std::max(max_p, max_d + max_g) + 1);
    std::vector<std::unique_ptr<LlamaGraph>> graphs;
    for (const KvCacheOptions& kv : kvs) {
      auto graph = LlamaGraph::Create(*model, n_ctx, std::clamp(max_p, 1, 512), &pool, 1, kv);  // -p 0: decode only
      if (!graph.ok()) return Fail(graph.status());
      graphs.push_back(std::move(graph).value());
      std::fprintf(stderr, "edgeq: KV cache %s: %llu bytes for %d positions (%.1f bytes per token)\n",
                   KvOptionsName(kv).c_str(), static_cast<unsigned long long>(graphs.back()->KvBytes()), n_ctx,
                   graphs.back()->KvBytesPerToken());
    }
    std::vector<float> logits(c.vocab_size);
    std::vector<int32_t> toks(std::max(max_p, 1));
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>((i * 7919 + 13) % c.vocab_size);
    struct Test {
      std::string name;
      int32_t n_prompt, n_gen, depth;
    };
    std::vector<Test> tests;
    for (int32_t p : f.n_prompt) if (p > 0) tests.push_back({"pp" + std::to_string(p), p, 0, 0});
    for (int32_t d : f.depth) {
      for (int32_t g : f.n_gen) {
        if (g > 0) tests.push_back({"tg" + std::to_string(g) + (d > 0 ? " @ d" + std::to_string(d) : ""), 0, g, d});
      }
    }
    for (const Test& t : tests) {
      if (t.n_prompt >= n_ctx || t.depth + t.n_gen >= n_ctx) {
        return Fail("test " + t.name + " exceeds the model's context (" + std::to_string(c.context_length) + ")");
      }
      // Decode at depth d: positions 0..d-1 hold synthetic keys and values (no prefill is
      // timed or even run), then every repetition decodes n_gen tokens from position d.
      for (auto& g : graphs) {
        if (t.depth > 0) g->FillKvForBench(0, t.depth);
      }
      std::vector<std::vector<double>> tss(graphs.size());
      std::vector<ForwardProfile> profiles(graphs.size());
      for (int rep = -1; rep < f.reps; ++rep) {  // rep -1 is the warm-up
        for (size_t gi = 0; gi < graphs.size(); ++gi) {
          LlamaGraph* graph = graphs[gi].get();
          graph->set_profile(f.profile && rep >= 0 ? &profiles[gi] : nullptr);
          auto t0 = std::chrono::steady_clock::now();
          if (t.n_prompt > 0) {
            Status st = graph->Forward(toks.data(), t.n_prompt, 0, false, logits.data());
            if (!st.ok()) return Fail(st);
          } else {
            for (int32_t i = 0; i < t.n_gen; ++i) {
              int32_t tok = toks[i % toks.size()];
              Status st = graph->Forward(&tok, 1, t.depth + i, false, logits.data());
              if (!st.ok()) return Fail(st);
            }
          }
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          graph->set_profile(nullptr);
          if (rep >= 0) tss[gi].push_back((t.n_prompt + t.n_gen) / s);
        }
      }
      for (size_t gi = 0; gi < graphs.size(); ++gi) {
        const std::vector<double>& ts = tss[gi];
        LlamaGraph* graph = graphs[gi].get();
        const KvCacheOptions* kv = &kvs[gi];
        Stat st = Summarize(ts);
        nlohmann::json j;
        j["model_filename"] = name;
        j["model_type"] = c.arch;
        j["model_size"] = stored;
        j["model_n_params"] = params;
        j["n_threads"] = threads;
        j["n_prompt"] = t.n_prompt;
        j["n_gen"] = t.n_gen;
        j["n_depth"] = t.depth;
        j["kv_type"] = KvOptionsName(*kv);
        j["kv_bytes"] = graph->KvBytes();
        j["kv_bytes_per_token"] = graph->KvBytesPerToken();
        {
          std::vector<double> sorted = ts;
          std::sort(sorted.begin(), sorted.end());
          const size_t m = sorted.size();
          j["median_ts"] = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
        }
        j["n_ctx"] = n_ctx;
        j["test"] = t.name;
        j["avg_ts"] = st.mean;
        j["stddev_ts"] = st.sd;
        j["samples_ts"] = st.samples;
        j["scheme"] = scheme;
        j["bpw"] = bpw;
        j["isa"] = Kernels().isa;
        j["peak_rss_bytes"] = std::max(peak_before_probe, PeakRssBytes());
        if (peak_includes_probe) j["peak_rss_includes_membw_probe"] = true;
        if (f.profile) j["profile"] = ReportProfile(profiles[gi], t.name);
        if (t.n_gen > 0) {
          const double gbps = st.mean * weight_bytes / 1e9;
          j["weight_bytes_per_token"] = weight_bytes;
          j["decode_weight_gbps"] = gbps;
          if (membw > 0) {
            j["membw_gbps"] = membw;
            j["membw_fraction"] = gbps / membw;
          }
          // The table stays llama-bench's; the bandwidth view goes to stderr.
          std::fprintf(stderr, "edgeq: %s, %d threads: %.1f MB of weights per token, %.1f GB/s", t.name.c_str(),
                       threads, weight_bytes / 1e6, gbps);
          if (membw > 0) std::fprintf(stderr, " = %.0f%% of the measured %.1f GB/s", 100.0 * gbps / membw, membw);
          std::fprintf(stderr, "\n");
        }
        out.push_back(j);
        if (!f.json) {
          char size[32];
          std::snprintf(size, sizeof size, "%.2f MiB", stored / 1048576.0);
          char rate[48];
          std::snprintf(rate, sizeof rate, "%.2f ± %.2f", st.mean, st.sd);
          std::printf("| %-22s | %-8s | %10s | %5.2f | %7d | %-8s | %8.1f | %14s | %18s |\n", name.c_str(),
                      scheme.c_str(), size, bpw, threads, KvOptionsName(*kv).substr(0, 8).c_str(),
                      graph->KvBytesPerToken(), t.name.c_str(), rate);
          std::fflush(stdout);
        }
      }
    }
  }
  if (f.json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

Command RegisterBench(CLI::App& root) {
  static BenchFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("bench", "measure prompt (ppN) and generation (tgN) speed, llama-bench style");
  AddModelFlags(app, &f->model, false);
  app->add_option("--dummy", f->dummy, "random weights in a real model's shapes: " + [] {
    std::string s;
    for (const auto& n : DummyShapeNames()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }());
  app->add_option("--dummy-type", f->dummy_type, "storage of dummy weights: f16 (default) or f32");
  app->add_option("--scheme", f->scheme, "quantize the weights in memory first: w8a8, w4a8-g32, w4a8-g128, ...");
  app->add_option("--gguf", f->gguf_out, "with --dummy: write the random model as GGUF F16 to this path and exit");
  app->add_option("-p,--n-prompt", f->n_prompt, "prompt lengths (ppN tests)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("-n,--n-gen", f->n_gen, "generation lengths (tgN tests)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("-t,--threads", f->threads, "thread counts, e.g. -t 1,2")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  app->add_option("-d,--n-depth", f->depth,
                  "decode depths: tgN runs after this many (synthetic) positions are already in the KV cache, "
                  "e.g. -d 2048,4096 (with --dummy any depth; real models up to their context)")
      ->delimiter(',');
  AddKvFlags(app, &f->kv, false);
  app->add_option("-r,--repetitions", f->reps, "repetitions per test")->check(CLI::Range(1, 1000));
  app->add_flag("--json", f->json, "print a JSON array (llama-bench field names where they exist)");
  app->add_flag("--membw", f->membw, "measure memory read bandwidth and report decode's fraction of it");
  app->add_option("--membw-gbps", f->membw_gbps, "use this bandwidth instead of measuring")
      ->check(CLI::Range(0.001, 1.0e6));
  app->add_flag("--profile", f->profile,
                "time each step of the forward pass (norms, q/k/v, attention, ..., classifier) and print ms per "
                "token and the matrix steps' GB/s (JSON: \"profile\"); adds a few clock reads per layer");
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
