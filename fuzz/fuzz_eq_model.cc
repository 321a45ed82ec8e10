// edgeq's quantized-model loader: a GGUF that edgeq quantize wrote (edgeq tensor types,
// format/eq_types.h) with arbitrary mutations is loaded, repacked for the kernels
// (RepackForKernels) and, when it loads, run for one token. Seeds: stories260K quantized
// with a few schemes (fuzz/corpus/eq_model/). Checks beyond "no crash / no sanitizer
// report": the packed copy of every repacked matrix is read end to end, and the logits
// buffer of the one token is the vocabulary's size (ASan sees any write past it).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/edgeq_fuzz_eq_model_" + std::to_string(getpid()) + ".gguf";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  // Load (GGUF parse, model binding, validation) without the repack, then repack
  // explicitly, as LoadModel does.
  auto m = edgeq::LoadGgufModel(path);
  if (!m.ok()) return 0;
  edgeq::Model& model = **m;
  if (!edgeq::CheckModelMemory(model).ok()) return 0;
  if (!edgeq::RepackForKernels(&model).ok()) return 0;
  auto touch = [](const edgeq::Tensor2D& t) {
    if (t.packed == nullptr || t.packed_bytes == 0) return;
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < t.packed_bytes; i += 64) sink = sink ^ t.packed[i];
    sink = sink ^ t.packed[t.packed_bytes - 1];
    (void)sink;
  };
  touch(model.weights.output);
  for (const auto& l : model.weights.layers) {
    for (const edgeq::Tensor2D* t : l.Matrices()) touch(*t);
  }
  // One token through the forward pass (1 thread: deterministic, and the fuzzer's
  // process stays single-threaded).
  edgeq::ThreadPool pool(1);
  const int32_t n_ctx = std::min<int32_t>(8, model.config.context_length);
  auto g = edgeq::LlamaGraph::Create(model, n_ctx, 2, &pool);
  if (!g.ok()) return 0;
  std::vector<float> logits(model.config.vocab_size);
  const int32_t tok = model.config.vocab_size > 1 ? 1 : 0;
  (void)(*g)->Forward(&tok, 1, 0, false, logits.data());
  return 0;
}
