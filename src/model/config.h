// Model hyperparameters: runtime values read from the model file, never
// compile-time constants.
#pragma once

#include <cstdint>
#include <string>

namespace edgeq {

enum class RopeType {
  kNormal,  // rotate adjacent pairs (x[2i], x[2i+1]): llama, llama2.c, GGUF "llama"
  kNeox,    // rotate halves (x[i], x[i+d/2]): qwen2/qwen3, HF checkpoints (GGUF permutes llama q/k)
};

struct RopeScaling {
  // Llama-3.x "llama3" frequency scaling; factor 0 = none.
  float factor = 0.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int32_t original_context = 8192;
  // Plain linear scaling (position / linear_factor); 1 = none.
  float linear_factor = 1.0f;
};

struct ModelConfig {
  std::string arch = "llama";  // "llama", "qwen2", "qwen3"
  std::string name;            // general.name or file stem
  int32_t dim = 0;             // embedding width
  int32_t hidden_dim = 0;      // FFN width
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;        // usually dim / n_heads (qwen3 may differ)
  int32_t vocab_size = 0;
  int32_t context_length = 0;  // training context
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeType rope_type = RopeType::kNormal;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // output head == token embedding
  bool qkv_bias = false;         // qwen2
  bool qk_norm = false;          // qwen3: per-head RMSNorm of q and k before rope
  // Layer matrices were rotated by the block Hadamard transform along their input
  // dimension (model/transforms.h): rotate their input activations the same way.
  bool rotate_inputs = false;
};

}  // namespace edgeq
