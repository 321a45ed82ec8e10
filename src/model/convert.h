// Writes a loaded Model (from any input format) as a GGUF file that edgeq and
// llama.cpp both read: architecture metadata, tokenizer metadata, tensors.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "format/ggml_types.h"
#include "model/model.h"

namespace edgeq {

struct ConvertOptions {
  GgmlType type = GgmlType::kF32;  // matrices; vectors (norms, biases) stay F32
  bool keep_types = false;          // write matrices in the types they already have
  std::vector<std::pair<std::string, std::string>> extra_string_metadata;
  // Called once per tensor: (index, total, name, note). note is non-empty when the
  // tensor was stored in another type than asked (e.g. rows not a multiple of 32).
  std::function<void(int, int, const std::string&, const std::string&)> progress;
};

Status WriteModelGguf(const Model& model, const std::string& out_path, const ConvertOptions& opts);

// tokenizer.ggml.* metadata for a TokenizerData.
class GgufWriter;
void AddTokenizerMetadata(const TokenizerData& td, GgufWriter* w);

}  // namespace edgeq
