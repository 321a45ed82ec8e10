// Tokenizer encode/decode on arbitrary bytes, with the shipped SentencePiece
// vocabulary and (when ../shared is present) the GPT-2 byte-level BPE vocabulary.
// Checks: ids are in range; decoding a byte-level BPE encoding gives the input back.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {
std::unique_ptr<edgeq::Tokenizer> Load(const std::string& path, bool llama2c) {
  edgeq::Result<edgeq::TokenizerData> d = edgeq::InvalidArgument("");
  if (llama2c) {
    d = edgeq::TokenizerDataFromLlama2c(path, 512);
  } else {
    auto g = edgeq::GgufFile::Open(path);
    if (!g.ok()) return nullptr;
    d = edgeq::TokenizerDataFromGguf(**g);
  }
  if (!d.ok()) return nullptr;
  auto t = edgeq::Tokenizer::Create(std::move(d).value());
  return t.ok() ? std::move(t).value() : nullptr;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto spm = Load(std::string(EDGEQ_SOURCE_DIR) + "/models/stories260K/tok512.bin", true);
  static auto bpe = Load(std::string(EDGEQ_SOURCE_DIR) + "/../shared/tokenizers/ggml-vocab-gpt-2.gguf", false);
  if (size == 0) return 0;
  const bool special = data[0] & 1;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (edgeq::Tokenizer* t : {spm.get(), bpe.get()}) {
    if (t == nullptr) continue;
    auto ids = t->Encode(text, true, special);
    for (int32_t id : ids) {
      if (id < 0 || id >= t->vocab_size()) std::abort();
    }
    edgeq::StreamDecoder dec(*t);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.Push(id);
    streamed += dec.Flush();
    if (t == bpe.get() && !special && streamed != text) std::abort();  // byte-level BPE is lossless
  }
  return 0;
}
