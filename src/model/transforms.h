// Function-preserving weight transforms applied before quantization, on a dense fp32
// copy of the model (DenseModel). Each leaves the model's output unchanged in exact
// arithmetic and moves activation outliers out of the way of quantization:
//  - SmoothQuant-style per-input-channel scaling (arXiv 2211.10438): x' = x / s,
//    W' = W diag(s), with s_j = max|x_j|^a / max|W_:j|^(1-a) from calibration; the
//    1/s is folded into the RMSNorm weight (attention and FFN inputs), into v_proj
//    rows (wo input; per KV channel so GQA groups agree) and into up_proj rows
//    (down_proj input).
//  - Block Hadamard rotation (QuaRot-style, arXiv 2404.00456) of every layer
//    matrix's input dimension in blocks of 32 (ops/hadamard.h); the runtime rotates the
//    activations the same way (ModelConfig::rotate_inputs).
#pragma once

#include <string>
#include <vector>

#include "model/calibrate.h"
#include "model/model.h"

namespace edgeq {

struct DenseMatrix {
  std::vector<float> w;  // [rows][cols]
  int64_t rows = 0, cols = 0;
  float* row(int64_t r) { return w.data() + r * cols; }
};

struct DenseLayer {
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
  DenseMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct DenseModel {
  ModelConfig config;
  DenseMatrix token_embd, output;  // output empty when tied
  std::vector<float> output_norm;
  std::vector<DenseLayer> layers;
  std::vector<float> rope_freq_factors;
  TokenizerData tokenizer_data;
};

DenseModel Densify(const Model& m);

// Wraps a DenseModel as a Model (pointers into `d`, which must outlive the result).
std::unique_ptr<Model> ModelView(const DenseModel& d);

void ApplySmoothing(DenseModel* d, const ActivationStats& stats, float alpha);
void ApplyBlockRotation(DenseModel* d);

}  // namespace edgeq
