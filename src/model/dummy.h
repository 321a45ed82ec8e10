// Random-weight models in the exact shapes of real ones (vLLM's "dummy" load
// format): for speed measurements without the real weights. Deterministic for a seed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace edgeq {

// Names: stories260k, stories15m, stories110m, smollm2-135m, qwen2.5-0.5b,
// tinyllama-1.1b, llama3.2-1b.
std::vector<std::string> DummyShapeNames();
Result<ModelConfig> DummyShapeConfig(const std::string& name);

// Builds a Model with weights ~ U(-a, a) scaled like a trained model's (std 0.02),
// norms = 1, stored as `type` (F32 or F16), and a synthetic SentencePiece-style
// vocabulary (<unk>, <s>, </s>, 256 byte tokens, then "tok<N>") so that the model can
// be written as GGUF and run by other engines.
Result<std::unique_ptr<Model>> MakeDummyModel(const std::string& shape, GgmlType type, uint64_t seed);

}  // namespace edgeq
