// Whole-model loading (format detection, llama2.c headers, GGUF model binding) on
// arbitrary bytes written to a temp file, with the shipped tokenizer.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/edgeq_fuzz_model_" + std::to_string(getpid()) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto m = edgeq::LoadModel({path, std::string(EDGEQ_SOURCE_DIR) + "/models/stories260K/tok512.bin"});
  (void)m;
  return 0;
}
