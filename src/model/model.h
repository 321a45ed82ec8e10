// A loaded model: config, tokenizer data and weights (read-only, shareable by
// many sessions). Weight matrices point into memory-mapped files where the file
// layout allows it; small vectors (norms, biases) are converted to fp32 and owned.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "model/config.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

namespace edgeq {

class GgufFile;

struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  Tensor2D wq;                       // [n_heads*head_dim, dim]
  Tensor2D wk;                       // [n_kv_heads*head_dim, dim]
  Tensor2D wv;                       // [n_kv_heads*head_dim, dim]
  Tensor2D wo;                       // [dim, n_heads*head_dim]
  const float* bq = nullptr;         // [n_heads*head_dim]    qwen2 only
  const float* bk = nullptr;         // [n_kv_heads*head_dim] qwen2 only
  const float* bv = nullptr;         // [n_kv_heads*head_dim] qwen2 only
  const float* q_norm = nullptr;     // [head_dim] qwen3 only
  const float* k_norm = nullptr;     // [head_dim] qwen3 only
  const float* ffn_norm = nullptr;   // [dim]
  Tensor2D w_gate;                   // [hidden, dim]  (llama2.c w1)
  Tensor2D w_down;                   // [dim, hidden]  (llama2.c w2)
  Tensor2D w_up;                     // [hidden, dim]  (llama2.c w3)

  // The seven matrices, in the order a forward pass reads them (q, k, v, o, gate, up,
  // down): RepackForKernels lays their packed copies out in this order.
  std::array<Tensor2D*, 7> Matrices() { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
  std::array<const Tensor2D*, 7> Matrices() const { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
};

struct ModelWeights {
  Tensor2D token_embd;                 // [vocab, dim]
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // [dim]
  Tensor2D output;                     // [vocab, dim] (== token_embd when tied)
  // Storage type of the first layer's matrices (what "scheme" a model runs).
  GgmlType wq_type() const { return layers.empty() ? token_embd.type : layers[0].wq.type; }
};

struct Model {
  ModelConfig config;
  TokenizerData tokenizer_data;
  ModelWeights weights;
  std::string path;          // what was loaded
  std::string format;        // "gguf", "llama2c-v0", "llama2c-v1", "llama2c-v2", "hf-safetensors"
  // Owners of the memory the weights point into.
  std::vector<std::shared_ptr<const void>> keep_alive;
  std::vector<std::unique_ptr<std::vector<float>>> owned_f32;
  std::unique_ptr<GgufFile> gguf;  // when loaded from GGUF (metadata for info/convert)
  // Per-frequency divisors for RoPE (GGUF rope_freqs.weight, or derived from an HF
  // "llama3" rope_scaling); empty = none. [head_dim/2]
  std::vector<float> rope_freq_factors;

  Model();
  ~Model();

  // Stores a converted fp32 buffer and returns its stable pointer.
  float* Own(std::vector<float> v);
  // Bytes of weights read per decoded token (all matrices once, embeddings one row).
  uint64_t WeightBytes() const;
};

// Bytes a matrix product reads of t: the packed copy when the kernels use one, else the
// stored rows.
uint64_t MatMulReadBytes(const Tensor2D& t);

struct LoadOptions {
  std::string model_path;      // GGUF file, llama2.c .bin, or HF directory
  std::string tokenizer_path;  // llama2.c tokenizer.bin (-z); optional elsewhere
};

// Detects the format (GGUF magic, llama2.c magic/legacy header, directory with
// config.json) and loads. Every error names the file and what is wrong.
Result<std::unique_ptr<Model>> LoadModel(const LoadOptions& opts);

// Repacks every integer-format matrix into the kernels' interleaved layout
// (kernels/packed.h), owned by the model; sets Tensor2D::packed. LoadModel does it;
// EDGEQ_NO_REPACK=1 turns it off (row-layout kernels, for comparisons).
Status RepackForKernels(Model* m);

// Memory a loaded model holds while it runs: matrices the kernels repack (their packed
// copy; the mapped rows are released) and the rest as stored (mapped or owned).
struct ModelMemory {
  uint64_t weight_bytes = 0;
  uint64_t repacked_bytes = 0;  // part of weight_bytes: the repack buffer, alignment included
};
ModelMemory EstimateModelMemory(const Model& m);
// ResourceExhausted naming the sizes when the model cannot fit in the available memory
// (core/memory_budget.h: MemAvailable, cgroup limit, EDGEQ_MEMORY_LIMIT_BYTES). LoadModel
// calls it before repacking.
Status CheckModelMemory(const Model& m);

Result<std::unique_ptr<Model>> LoadGgufModel(const std::string& path);
Result<std::unique_ptr<Model>> LoadLlama2cModel(const std::string& path, const std::string& tokenizer_path);
Result<std::unique_ptr<Model>> LoadHfModel(const std::string& dir);

// Fills config-derived checks shared by all loaders (head_dim, GQA divisibility,
// tensor shapes) — returns an error naming the first inconsistency.
Status ValidateModel(const Model& m);

}  // namespace edgeq
