// GGUF -> Model: reads the architecture's hyperparameters from metadata and binds
// tensors by their GGUF names. Matrices are used in place from the map in whatever
// type they are stored; 1-D tensors (norms, biases) are converted to fp32.
#include <cmath>

#include "format/gguf.h"
#include "format/tensor_types.h"
#include "model/model.h"

namespace edgeq {
namespace {

class Binder {
 public:
  Binder(const GgufFile& g, Model* m) : g_(g), m_(m) {}

  Result<Tensor2D> Matrix(const std::string& name, bool required = true) {
    const GgufTensorInfo* t = g_.FindTensor(name);
    if (t == nullptr) {
      if (!required) return Tensor2D{};
      return DataLoss(g_.path() + ": missing tensor '" + name + "'");
    }
    if (t->dims.size() != 2) {
      return DataLoss(g_.path() + ": tensor '" + name + "' has " + std::to_string(t->dims.size()) +
                      " dimensions, expected 2");
    }
    if (!IsEqType(t->type) && !GgmlTraits(t->type).can_dequantize) {
      return Unimplemented(g_.path() + ": tensor '" + name + "' has type " + TypeName(t->type) +
                           ", which edgeq cannot compute with");
    }
    Tensor2D out;
    out.type = t->type;
    out.data = t->data;
    out.cols = static_cast<int64_t>(t->dims[0]);
    out.rows = static_cast<int64_t>(t->dims[1]);
    ASSIGN_OR_RETURN(out.row_bytes, RowBytes(t->type, static_cast<int64_t>(t->dims[0])));
    return out;
  }

  // 1-D tensor as fp32 with `n` elements; nullptr (no error) when optional and absent.
  Result<const float*> Vector(const std::string& name, int64_t n, bool required = true) {
    const GgufTensorInfo* t = g_.FindTensor(name);
    if (t == nullptr) {
      if (!required) return static_cast<const float*>(nullptr);
      return DataLoss(g_.path() + ": missing tensor '" + name + "'");
    }
    if (static_cast<int64_t>(t->n_elements()) != n) {
      return DataLoss(g_.path() + ": tensor '" + name + "' has " + std::to_string(t->n_elements()) +
                      " elements, expected " + std::to_string(n));
    }
    if (t->type == GgmlType::kF32 && reinterpret_cast<uintptr_t>(t->data) % 4 == 0) {
      return reinterpret_cast<const float*>(t->data);
    }
    std::vector<float> v(static_cast<size_t>(n));
    Status st = DecodeRow(t->type, t->data, v.data(), n);
    if (!st.ok()) return st.WithContext(g_.path() + ": tensor '" + name + "'");
    return static_cast<const float*>(m_->Own(std::move(v)));
  }

 private:
  const GgufFile& g_;
  Model* m_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadGgufModel(const std::string& path) {
  auto model = std::make_unique<Model>();
  ASSIGN_OR_RETURN(model->gguf, GgufFile::Open(path));
  const GgufFile& g = *model->gguf;
  model->path = path;
  model->format = "gguf";
  ModelConfig& c = model->config;

  ASSIGN_OR_RETURN(c.arch, g.GetString("general.architecture"));
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3") {
    return Unimplemented(path + ": architecture '" + c.arch +
                         "' is not supported (llama, qwen2, qwen3 are)");
  }
  if (g.tensors().empty()) {
    return InvalidArgument(path + ": file has no tensors (a vocabulary-only GGUF?); "
                                  "it can be used with `edgeq tokenize` but not run");
  }
  ASSIGN_OR_RETURN(c.name, g.GetString("general.name").ok() ? g.GetString("general.name")
                                                            : Result<std::string>(path));
  const std::string a = c.arch + ".";
  int64_t v = 0;
  ASSIGN_OR_RETURN(v, g.GetInt(a + "embedding_length"));
  c.dim = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  ASSIGN_OR_RETURN(v, g.GetInt(a + "feed_forward_length"));
  c.hidden_dim = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  ASSIGN_OR_RETURN(v, g.GetInt(a + "block_count"));
  c.n_layers = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  ASSIGN_OR_RETURN(v, g.GetInt(a + "attention.head_count"));
  c.n_heads = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  ASSIGN_OR_RETURN(v, g.GetIntOr(a + "attention.head_count_kv", c.n_heads));
  c.n_kv_heads = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  ASSIGN_OR_RETURN(v, g.GetIntOr(a + "context_length", 2048));
  c.context_length = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  if (c.n_heads <= 0 || c.dim <= 0) return DataLoss(path + ": head_count and embedding_length must be positive");
  ASSIGN_OR_RETURN(v, g.GetIntOr(a + "attention.key_length", c.dim / c.n_heads));
  c.head_dim = static_cast<int32_t>(std::min<int64_t>(v, INT32_MAX));
  double f = 0;
  ASSIGN_OR_RETURN(f, g.GetFloatOr(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rms_eps = static_cast<float>(f);
  ASSIGN_OR_RETURN(f, g.GetFloatOr(a + "rope.freq_base", 10000.0));
  c.rope_theta = static_cast<float>(f);
  c.rope_type = c.arch == "llama" ? RopeType::kNormal : RopeType::kNeox;
  ASSIGN_OR_RETURN(c.rotate_inputs, g.GetBoolOr("edgeq.rotate_inputs", false));
  c.qkv_bias = c.arch == "qwen2";
  c.qk_norm = c.arch == "qwen3";
  if (const GgufValue* st = g.Find(a + "rope.scaling.type"); st != nullptr && st->type == GgufType::kString) {
    if (st->str == "linear") {
      ASSIGN_OR_RETURN(f, g.GetFloatOr(a + "rope.scaling.factor", 1.0));
      c.rope_scaling.linear_factor = static_cast<float>(f);
    } else if (st->str != "none") {
      return Unimplemented(path + ": rope scaling type '" + st->str + "' is not supported");
    }
  }

  Binder b(g, model.get());
  ModelWeights& w = model->weights;
  ASSIGN_OR_RETURN(w.token_embd, b.Matrix("token_embd.weight"));
  if (c.dim != w.token_embd.cols) return DataLoss(path + ": token_embd width differs from embedding_length");
  c.vocab_size = static_cast<int32_t>(w.token_embd.rows);
  ASSIGN_OR_RETURN(w.output_norm, b.Vector("output_norm.weight", c.dim));
  ASSIGN_OR_RETURN(w.output, b.Matrix("output.weight", /*required=*/false));
  c.tied_embeddings = w.output.empty();
  if (c.tied_embeddings) w.output = w.token_embd;
  if (c.n_layers <= 0 || c.n_layers > 4096) return DataLoss(path + ": implausible block_count " + std::to_string(c.n_layers));
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  w.layers.resize(c.n_layers);
  for (int32_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    ASSIGN_OR_RETURN(l.attn_norm, b.Vector(p + "attn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(l.wq, b.Matrix(p + "attn_q.weight"));
    ASSIGN_OR_RETURN(l.wk, b.Matrix(p + "attn_k.weight"));
    ASSIGN_OR_RETURN(l.wv, b.Matrix(p + "attn_v.weight"));
    ASSIGN_OR_RETURN(l.wo, b.Matrix(p + "attn_output.weight"));
    ASSIGN_OR_RETURN(l.bq, b.Vector(p + "attn_q.bias", q_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.bk, b.Vector(p + "attn_k.bias", kv_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.bv, b.Vector(p + "attn_v.bias", kv_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.q_norm, b.Vector(p + "attn_q_norm.weight", c.head_dim, c.qk_norm));
    ASSIGN_OR_RETURN(l.k_norm, b.Vector(p + "attn_k_norm.weight", c.head_dim, c.qk_norm));
    ASSIGN_OR_RETURN(l.ffn_norm, b.Vector(p + "ffn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(l.w_gate, b.Matrix(p + "ffn_gate.weight"));
    ASSIGN_OR_RETURN(l.w_down, b.Matrix(p + "ffn_down.weight"));
    ASSIGN_OR_RETURN(l.w_up, b.Matrix(p + "ffn_up.weight"));
  }
  // Llama-3.1 style per-frequency factors are stored as a tensor by llama.cpp's converter.
  if (g.FindTensor("rope_freqs.weight") != nullptr) {
    const float* ff = nullptr;
    ASSIGN_OR_RETURN(ff, b.Vector("rope_freqs.weight", c.head_dim / 2));
    model->rope_freq_factors.assign(ff, ff + c.head_dim / 2);
  }
  ASSIGN_OR_RETURN(model->tokenizer_data, TokenizerDataFromGguf(g));
  RETURN_IF_ERROR(ValidateModel(*model).WithContext(path));
  return model;
}

}  // namespace edgeq
