// edgeq perplexity: PPL of a text (llama-perplexity's method) and, with --kl-base,
// KL divergence / top-1 agreement against a base model.
#include <cstdio>

#include "cli/common.h"
#include "nlohmann/json.hpp"
#include "runtime/perplexity.h"

namespace edgeq::cli {
namespace {

struct PplFlags {
  ModelFlags model;
  std::string file;
  std::string kl_base;
  std::string kl_base_tokenizer;
  int32_t chunks = -1;
  int32_t batch = 64;
  bool json = false;
  bool no_progress = false;
  bool adaptive_act = false;
  bool kl_fp32_kv = false;
  KvFlags kv;
};

void ProgressBar(int done, int total) {
  const int width = 40;
  int filled = total > 0 ? done * width / total : width;
  std::fprintf(stderr, "\rperplexity [%.*s%*s] %d/%d chunks", filled,
               "========================================", width - filled, "", done, total);
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

int Run(PplFlags& f) {
  ApplyDefaultModel(&f.model);
  if (f.file.empty()) return Fail("perplexity needs a text file: -f FILE");
  auto text = ReadFileToString(f.file);
  if (!text.ok()) return Fail(text.status());
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  auto kv = ToKvOptions(f.kv);
  if (!kv.ok()) return Fail(kv.status());
  std::unique_ptr<Model> base;
  if (f.kl_fp32_kv && !f.kl_base.empty()) return Fail("--kl-fp32-kv and --kl-base exclude each other");
  if (!f.kl_base.empty()) {
    LoadOptions lo;
    lo.model_path = f.kl_base;
    lo.tokenizer_path = f.kl_base_tokenizer.empty() ? f.model.tokenizer : f.kl_base_tokenizer;
    auto b = LoadModel(lo);
    if (!b.ok()) return Fail(b.status().WithContext("--kl-base"));
    base = std::move(b).value();
  }
  PerplexityOptions po;
  po.n_ctx = f.model.ctx;
  po.max_chunks = f.chunks;
  po.n_threads = f.model.threads;
  po.batch = f.batch;
  po.adaptive_act_bits = f.adaptive_act;
  po.kv = *kv;
  const Model* base_model = f.kl_fp32_kv ? loaded->model.get() : base.get();
  auto r = ComputePerplexity(*loaded->model, *loaded->tokenizer, base_model, *text, po,
                             f.no_progress ? std::function<void(int, int)>() : ProgressBar);
  if (!r.ok()) return Fail(r.status());
  if (f.json) {
    nlohmann::json j;
    j["model"] = loaded->model->path;
    j["ppl"] = r->ppl;
    j["tokens"] = r->tokens_scored;
    j["chunks"] = r->chunks;
    j["ctx"] = r->n_ctx;
    if (f.adaptive_act) j["low_bit_fraction"] = r->low_bit_fraction;
    j["kv_type"] = KvOptionsName(*kv);
    j["kv_bytes"] = r->kv_bytes;
    j["kv_bytes_per_token"] = r->kv_bytes_per_token;
    if (kv->adaptive) {
      j["kv_tokens_2bit"] = r->kv_precision[0];
      j["kv_tokens_4bit"] = r->kv_precision[1];
      j["kv_tokens_8bit"] = r->kv_precision[2];
    }
    if (r->has_kl) {
      j["kl_base"] = f.kl_fp32_kv ? "fp32-kv" : f.kl_base;
      j["base_ppl"] = r->base_ppl;
      j["kld_mean"] = r->kld_mean;
      j["kld_p99"] = r->kld_p99;
      j["kld_max"] = r->kld_max;
      j["top1_agree"] = r->top1_agree;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("chunks = %d, ctx = %d, scored tokens = %lld\n", r->chunks, r->n_ctx,
                static_cast<long long>(r->tokens_scored));
    std::printf("PPL = %.4f\n", r->ppl);
    std::printf("KV cache = %s, %llu bytes, %.1f bytes per token\n", KvOptionsName(*kv).c_str(),
                static_cast<unsigned long long>(r->kv_bytes), r->kv_bytes_per_token);
    if (kv->adaptive) {
      std::printf("KV tokens x layers at 2/4/8 bits (last chunk) = %lld / %lld / %lld\n",
                  static_cast<long long>(r->kv_precision[0]), static_cast<long long>(r->kv_precision[1]),
                  static_cast<long long>(r->kv_precision[2]));
    }
    if (r->has_kl) {
      std::printf("base PPL = %.4f\n", r->base_ppl);
      std::printf("KLD mean = %.6f\nKLD p99 = %.6f\nKLD max = %.6f\nsame top-1 = %.2f%%\n", r->kld_mean,
                  r->kld_p99, r->kld_max, 100.0 * r->top1_agree);
    }
  }
  return 0;
}

}  // namespace

Command RegisterPerplexity(CLI::App& root) {
  static PplFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("perplexity", "perplexity of a text; KL divergence against a base model");
  AddModelFlags(app, &f->model, true);
  app->add_option("-f,--file", f->file, "text file to score")->required();
  app->add_option("--chunks", f->chunks, "score at most N chunks");
  app->add_option("--kl-base", f->kl_base, "base model (e.g. the fp32 one) for KL divergence");
  app->add_option("--kl-base-tokenizer", f->kl_base_tokenizer, "tokenizer.bin for a llama2.c base model (default: -z)");
  app->add_option("-b,--batch-size", f->batch, "evaluation chunk size")->check(CLI::Range(1, 1 << 16));
  app->add_flag("--json", f->json, "print one JSON object");
  app->add_flag("--adaptive-act", f->adaptive_act, "token-adaptive 4/8-bit activations (integer-kernel formats)");
  app->add_flag("--no-progress", f->no_progress, "no progress bar");
  app->add_flag("--kl-fp32-kv", f->kl_fp32_kv,
                "KL divergence against the same model with an fp32 KV cache (measures --kv-type alone)");
  AddKvFlags(app, &f->kv, false);
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
