// tokenizer.json / tokenizer_config.json / config.json parsing on arbitrary bytes: the
// input is split at the first 0 byte into a tokenizer.json and a config.json, written
// to a temp directory, and loaded as a tokenizer and as a model directory.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/edgeq_fuzz_hf_" + std::to_string(getpid());
  static bool made = mkdir(dir.c_str(), 0755) == 0 || true;
  (void)made;
  std::string all(reinterpret_cast<const char*>(data), size);
  size_t cut = all.find('\0');
  std::string tok = all.substr(0, cut);
  std::string cfg = cut == std::string::npos ? "{}" : all.substr(cut + 1);
  std::ofstream(dir + "/tokenizer.json", std::ios::binary | std::ios::trunc) << tok;
  std::ofstream(dir + "/config.json", std::ios::binary | std::ios::trunc) << cfg;
  auto td = edgeq::TokenizerDataFromHfJson(dir);
  if (td.ok()) {
    auto t = edgeq::Tokenizer::Create(std::move(td).value());
    if (t.ok()) (void)(*t)->Encode("Hello, world! 123 <|im_start|>", true, true);
  }
  (void)edgeq::LoadModel({dir, ""});
  return 0;
}
