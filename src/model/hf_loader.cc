// Hugging Face directory -> Model: config.json for hyperparameters, *.safetensors
// (one file or sharded with model.safetensors.index.json) for weights, and
// tokenizer.json (+ tokenizer_config.json) for the vocabulary and chat template.
// F16/BF16/F32 matrices are used in place from the map. HF checkpoints rotate
// (x[i], x[i+d/2]) pairs, so every HF model runs with neox-style RoPE.
#include <cmath>
#include <cstring>

#include "format/safetensors.h"
#include "model/model.h"
#include "nlohmann/json.hpp"

namespace edgeq {
namespace {

using Json = nlohmann::json;

Result<int64_t> JInt(const Json& j, const char* key, int64_t def, bool required, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return DataLoss(where + ": missing integer field '" + key + "'");
    return def;
  }
  if (!it->is_number_integer()) return DataLoss(where + ": field '" + std::string(key) + "' is not an integer");
  return it->get<int64_t>();
}

Result<double> JNum(const Json& j, const char* key, double def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) return DataLoss(where + ": field '" + std::string(key) + "' is not a number");
  return it->get<double>();
}

class HfBinder {
 public:
  HfBinder(const SafetensorsSet& set, Model* m, std::string dir) : set_(set), m_(m), dir_(std::move(dir)) {}

  Result<Tensor2D> Matrix(const std::string& name, int64_t rows, int64_t cols, bool required = true) {
    const SafeTensor* t = set_.Find(name);
    if (t == nullptr) {
      if (!required) return Tensor2D{};
      return DataLoss(dir_ + ": missing tensor '" + name + "'");
    }
    if (t->shape.size() != 2 || static_cast<int64_t>(t->shape[0]) != rows ||
        static_cast<int64_t>(t->shape[1]) != cols) {
      return DataLoss(dir_ + ": tensor '" + name + "' has an unexpected shape (expected [" + std::to_string(rows) +
                      ", " + std::to_string(cols) + "])");
    }
    Tensor2D out;
    out.rows = rows;
    out.cols = cols;
    out.data = t->data;
    if (t->dtype == "F32") {
      out.type = GgmlType::kF32;
      if (reinterpret_cast<uintptr_t>(t->data) % 4 != 0) {  // keep fp32 loads aligned
        std::vector<float> v(static_cast<size_t>(rows * cols));
        std::memcpy(v.data(), t->data, v.size() * 4);
        out.data = m_->Own(std::move(v));
      }
    } else if (t->dtype == "F16") {
      out.type = GgmlType::kF16;
    } else if (t->dtype == "BF16") {
      out.type = GgmlType::kBF16;
    } else {
      return Unimplemented(dir_ + ": tensor '" + name + "' has dtype " + t->dtype + " (F32, F16, BF16 are supported)");
    }
    out.row_bytes = static_cast<uint64_t>(cols) * (out.type == GgmlType::kF32 ? 4 : 2);
    return out;
  }

  Result<const float*> Vector(const std::string& name, int64_t n, bool required = true) {
    const SafeTensor* t = set_.Find(name);
    if (t == nullptr) {
      if (!required) return static_cast<const float*>(nullptr);
      return DataLoss(dir_ + ": missing tensor '" + name + "'");
    }
    if (t->shape.size() != 1 || static_cast<int64_t>(t->shape[0]) != n) {
      return DataLoss(dir_ + ": tensor '" + name + "' should be a vector of " + std::to_string(n));
    }
    std::vector<float> v(static_cast<size_t>(n));
    RETURN_IF_ERROR(SafeTensorToFloat(*t, v.data()).WithContext(dir_ + ": tensor '" + name + "'"));
    return static_cast<const float*>(m_->Own(std::move(v)));
  }

 private:
  const SafetensorsSet& set_;
  Model* m_;
  std::string dir_;
};

}  // namespace

static Result<std::unique_ptr<Model>> LoadHfModelImpl(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  ASSIGN_OR_RETURN(std::string cfg_text, ReadFileToString(cfg_path));
  Json j = Json::parse(cfg_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLoss(cfg_path + ": not a valid JSON object");

  auto model = std::make_unique<Model>();
  model->path = dir;
  model->format = "hf-safetensors";
  ModelConfig& c = model->config;
  if (!j.contains("model_type") || !j["model_type"].is_string()) {
    return DataLoss(cfg_path + ": model_type is missing or not a string");
  }
  const std::string model_type = j["model_type"].get<std::string>();
  if (model_type == "llama" || model_type == "mistral") {
    c.arch = "llama";
  } else if (model_type == "qwen2") {
    c.arch = "qwen2";
  } else if (model_type == "qwen3") {
    c.arch = "qwen3";
  } else {
    return Unimplemented(cfg_path + ": model_type '" + model_type + "' is not supported (llama, qwen2, qwen3 are)");
  }
  c.name = dir;
  int64_t v = 0;
  auto i32 = [](int64_t x) { return static_cast<int32_t>(std::clamp<int64_t>(x, -1, INT32_MAX)); };
  ASSIGN_OR_RETURN(v, JInt(j, "hidden_size", 0, true, cfg_path));
  c.dim = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "intermediate_size", 0, true, cfg_path));
  c.hidden_dim = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "num_hidden_layers", 0, true, cfg_path));
  c.n_layers = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "num_attention_heads", 0, true, cfg_path));
  c.n_heads = i32(v);
  if (c.n_heads <= 0 || c.dim <= 0) return DataLoss(cfg_path + ": hidden_size and num_attention_heads must be positive");
  ASSIGN_OR_RETURN(v, JInt(j, "num_key_value_heads", c.n_heads, false, cfg_path));
  c.n_kv_heads = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "head_dim", c.dim / c.n_heads, false, cfg_path));
  c.head_dim = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "vocab_size", 0, true, cfg_path));
  c.vocab_size = i32(v);
  ASSIGN_OR_RETURN(v, JInt(j, "max_position_embeddings", 2048, false, cfg_path));
  c.context_length = i32(v);
  double f = 0;
  ASSIGN_OR_RETURN(f, JNum(j, "rms_norm_eps", 1e-6, cfg_path));
  c.rms_eps = static_cast<float>(f);
  ASSIGN_OR_RETURN(f, JNum(j, "rope_theta", 10000.0, cfg_path));
  c.rope_theta = static_cast<float>(f);
  c.rope_type = RopeType::kNeox;
  for (const char* key : {"tie_word_embeddings", "attention_bias"}) {
    if (j.contains(key) && !j[key].is_boolean()) return DataLoss(cfg_path + ": " + key + " must be true or false");
  }
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  c.qkv_bias = c.arch == "qwen2" || j.value("attention_bias", false);
  c.qk_norm = c.arch == "qwen3";
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object()) {
    std::string type = rs->value("rope_type", rs->value("type", std::string()));
    ASSIGN_OR_RETURN(f, JNum(*rs, "factor", 1.0, cfg_path));
    if (type == "llama3") {
      c.rope_scaling.factor = static_cast<float>(f);
      ASSIGN_OR_RETURN(f, JNum(*rs, "low_freq_factor", 1.0, cfg_path));
      c.rope_scaling.low_freq_factor = static_cast<float>(f);
      ASSIGN_OR_RETURN(f, JNum(*rs, "high_freq_factor", 4.0, cfg_path));
      c.rope_scaling.high_freq_factor = static_cast<float>(f);
      ASSIGN_OR_RETURN(v, JInt(*rs, "original_max_position_embeddings", 8192, false, cfg_path));
      c.rope_scaling.original_context = i32(v);
    } else if (type == "linear") {
      c.rope_scaling.linear_factor = static_cast<float>(f);
    } else if (!type.empty() && type != "default") {
      return Unimplemented(cfg_path + ": rope_scaling type '" + type + "' is not supported");
    }
  }
  if (c.n_layers <= 0 || c.n_layers > 4096) return DataLoss(cfg_path + ": implausible num_hidden_layers");

  ASSIGN_OR_RETURN(SafetensorsSet set, SafetensorsSet::OpenDir(dir));
  auto set_ptr = std::make_shared<SafetensorsSet>(std::move(set));
  model->keep_alive.push_back(set_ptr);
  HfBinder b(*set_ptr, model.get(), dir);
  const int64_t D = c.dim, H = c.hidden_dim, V = c.vocab_size;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  ModelWeights& w = model->weights;
  ASSIGN_OR_RETURN(w.token_embd, b.Matrix("model.embed_tokens.weight", V, D));
  ASSIGN_OR_RETURN(w.output_norm, b.Vector("model.norm.weight", D));
  ASSIGN_OR_RETURN(w.output, b.Matrix("lm_head.weight", V, D, !c.tied_embeddings));
  if (w.output.empty()) {
    c.tied_embeddings = true;
    w.output = w.token_embd;
  }
  w.layers.resize(c.n_layers);
  for (int32_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    ASSIGN_OR_RETURN(l.attn_norm, b.Vector(p + "input_layernorm.weight", D));
    ASSIGN_OR_RETURN(l.ffn_norm, b.Vector(p + "post_attention_layernorm.weight", D));
    ASSIGN_OR_RETURN(l.wq, b.Matrix(p + "self_attn.q_proj.weight", q_dim, D));
    ASSIGN_OR_RETURN(l.wk, b.Matrix(p + "self_attn.k_proj.weight", kv_dim, D));
    ASSIGN_OR_RETURN(l.wv, b.Matrix(p + "self_attn.v_proj.weight", kv_dim, D));
    ASSIGN_OR_RETURN(l.wo, b.Matrix(p + "self_attn.o_proj.weight", D, q_dim));
    ASSIGN_OR_RETURN(l.bq, b.Vector(p + "self_attn.q_proj.bias", q_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.bk, b.Vector(p + "self_attn.k_proj.bias", kv_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.bv, b.Vector(p + "self_attn.v_proj.bias", kv_dim, c.qkv_bias));
    ASSIGN_OR_RETURN(l.q_norm, b.Vector(p + "self_attn.q_norm.weight", c.head_dim, c.qk_norm));
    ASSIGN_OR_RETURN(l.k_norm, b.Vector(p + "self_attn.k_norm.weight", c.head_dim, c.qk_norm));
    ASSIGN_OR_RETURN(l.w_gate, b.Matrix(p + "mlp.gate_proj.weight", H, D));
    ASSIGN_OR_RETURN(l.w_up, b.Matrix(p + "mlp.up_proj.weight", H, D));
    ASSIGN_OR_RETURN(l.w_down, b.Matrix(p + "mlp.down_proj.weight", D, H));
  }
  ASSIGN_OR_RETURN(model->tokenizer_data, TokenizerDataFromHfJson(dir));
  RETURN_IF_ERROR(ValidateModel(*model).WithContext(dir));
  return model;
}

// nlohmann::json throws on a value of the wrong type (e.g. "model_type": 4); nothing
// read from a file may escape as an exception, so every JSON access is inside this.
Result<std::unique_ptr<Model>> LoadHfModel(const std::string& dir) {
  try {
    return LoadHfModelImpl(dir);
  } catch (const nlohmann::json::exception& e) {
    return DataLoss(dir + ": malformed field in config.json or the tokenizer files: " + e.what());
  }
}

}  // namespace edgeq
