// GGUF parser + tensor table + model binding on arbitrary bytes.
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = edgeq::GgufFile::Parse(data, size, "fuzz.gguf");
  if (!g.ok()) return 0;
  // Touch everything the parser claims is valid.
  for (const auto& t : (*g)->tensors()) {
    volatile uint8_t sink = 0;
    if (t.nbytes > 0) sink = t.data[0] ^ t.data[t.nbytes - 1];
    (void)sink;
  }
  auto td = edgeq::TokenizerDataFromGguf(**g);
  if (td.ok()) {
    auto tok = edgeq::Tokenizer::Create(std::move(td).value());
    if (tok.ok()) (void)(*tok)->Encode("Hello world <s> 123", true, true);
  }
  return 0;
}
