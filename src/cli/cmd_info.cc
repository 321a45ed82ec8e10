// edgeq info: architecture, hyperparameters, tokenizer, tensor table and totals.
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "format/gguf.h"
#include "format/tensor_types.h"

namespace edgeq::cli {
namespace {

struct InfoFlags {
  ModelFlags model;
  std::string positional;
  bool no_tensors = false;
};

std::string HumanBytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

void Row(const char* name, const Tensor2D& t, std::map<std::string, uint64_t>* by_type, uint64_t* total, uint64_t* params) {
  if (t.empty()) return;
  const uint64_t bytes = t.row_bytes * t.rows;
  std::printf("  %-28s %-8s [%6lld, %6lld] %12llu\n", name, TypeName(t.type), static_cast<long long>(t.rows),
              static_cast<long long>(t.cols), static_cast<unsigned long long>(bytes));
  (*by_type)[TypeName(t.type)] += bytes;
  *total += bytes;
  *params += static_cast<uint64_t>(t.rows) * t.cols;
}

int Run(InfoFlags& f) {
  if (!f.positional.empty()) f.model.model = f.positional;
  ApplyDefaultModel(&f.model);
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  const Model& m = *loaded->model;
  const ModelConfig& c = m.config;
  const TokenizerData& td = loaded->tokenizer->data();
  std::printf("model:        %s\n", m.path.c_str());
  std::printf("format:       %s\n", m.format.c_str());
  std::printf("architecture: %s\n", c.arch.c_str());
  std::printf("name:         %s\n", c.name.c_str());
  std::printf("dim %d, hidden %d, layers %d, heads %d, kv heads %d, head dim %d, vocab %d, context %d\n", c.dim,
              c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.context_length);
  std::printf("rms eps %g, rope theta %g, rope %s%s, tied output %s, qkv bias %s, qk norm %s\n", c.rms_eps,
              c.rope_theta, c.rope_type == RopeType::kNeox ? "neox" : "normal",
              m.rope_freq_factors.empty() && c.rope_scaling.factor == 0 ? "" : " (llama3 scaling)",
              c.tied_embeddings ? "yes" : "no", c.qkv_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
  std::printf("tokenizer:    %s%s%s, %zu tokens, %zu merges, bos %d, eos %d, add_bos %s, chat template %s\n",
              td.model.c_str(), td.pre.empty() ? "" : " / pre ", td.pre.c_str(), td.tokens.size(), td.merges.size(),
              td.bos_id, td.eos_id, td.add_bos ? "yes" : "no", td.chat_template.empty() ? "none" : "present");
  if (f.no_tensors) return 0;
  std::printf("tensors:\n  %-28s %-8s %-16s %12s\n", "name", "type", "shape [rows, cols]", "bytes");
  std::map<std::string, uint64_t> by_type;
  uint64_t total = 0, params = 0;
  const ModelWeights& w = m.weights;
  Row("token_embd", w.token_embd, &by_type, &total, &params);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    Row((p + "attn_q").c_str(), l.wq, &by_type, &total, &params);
    Row((p + "attn_k").c_str(), l.wk, &by_type, &total, &params);
    Row((p + "attn_v").c_str(), l.wv, &by_type, &total, &params);
    Row((p + "attn_output").c_str(), l.wo, &by_type, &total, &params);
    Row((p + "ffn_gate").c_str(), l.w_gate, &by_type, &total, &params);
    Row((p + "ffn_up").c_str(), l.w_up, &by_type, &total, &params);
    Row((p + "ffn_down").c_str(), l.w_down, &by_type, &total, &params);
  }
  if (!c.tied_embeddings) Row("output", w.output, &by_type, &total, &params);
  // Norm/bias vectors: counted as fp32 parameters.
  uint64_t vec = static_cast<uint64_t>(c.dim) * (2 * c.n_layers + 1);
  if (c.qkv_bias) vec += static_cast<uint64_t>(c.n_layers) * (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
  if (c.qk_norm) vec += static_cast<uint64_t>(c.n_layers) * 2 * c.head_dim;
  params += vec;
  std::printf("totals: %llu parameters (%.2f M), matrices %s", static_cast<unsigned long long>(params), params / 1e6,
              HumanBytes(total).c_str());
  for (auto& [t, b] : by_type) std::printf(", %s %s", t.c_str(), HumanBytes(b).c_str());
  std::printf(", vectors %s\n", HumanBytes(vec * 4).c_str());
  return 0;
}

}  // namespace

Command RegisterInfo(CLI::App& root) {
  static InfoFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("info", "print a model's architecture, tokenizer and tensors");
  app->add_option("MODEL", f->positional, "model path (same as -m)");
  AddModelFlags(app, &f->model, false);
  app->add_flag("--no-tensors", f->no_tensors, "skip the tensor table");
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
