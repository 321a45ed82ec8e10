// safetensors header + tensor table on arbitrary bytes; every tensor the parser accepts
// is read end to end and converted to float.
#include <cstdint>
#include <vector>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = edgeq::SafetensorsFile::Parse(data, size, "fuzz.safetensors");
  if (!f.ok()) return 0;
  std::vector<float> buf;
  for (const auto& t : (*f)->tensors()) {
    if (t.nbytes > (1 << 20)) continue;
    buf.resize(t.nbytes / 2 + 1);
    (void)edgeq::SafeTensorToFloat(t, buf.data());
  }
  return 0;
}
