// Corrupt-file suite: mutations of the shipped model (as llama2.c checkpoint and as
// GGUF) must each end in a clear error or a correct load, never a crash, hang or
// over-read (run under ASan+UBSan in CI). Named cases cover the classic breakages;
// a seeded random-mutation sweep covers the rest.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "format/gguf.h"
#include "model/convert.h"
#include "model/llama.h"
#include "model/model.h"
#include "test_util.h"

namespace edgeq {
namespace {

std::string Read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Write(const std::string& name, const std::string& bytes) {
  std::string p = test::TempDir() + "/" + name;
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  return p;
}

std::string Tok512() { return test::SourceDir() + "/models/stories260K/tok512.bin"; }

// The shipped model converted to GGUF (Q8_0 where rows allow, F16 otherwise).
const std::string& StoriesGguf() {
  static const std::string path = [] {
    auto m = LoadModel({test::SourceDir() + "/models/stories260K/stories260K.bin", Tok512()});
    EXPECT_TRUE(m.ok());
    std::string p = test::TempDir() + "/corrupt_base.gguf";
    ConvertOptions o;
    o.type = GgmlType::kQ8_0;
    EXPECT_TRUE(WriteModelGguf(**m, p, o).ok());
    return p;
  }();
  return path;
}

// Loads and, if the load succeeds, runs a few tokens: neither may crash.
Status LoadAndRun(const std::string& path) {
  auto m = LoadModel({path, Tok512()});
  if (!m.ok()) return m.status();
  ThreadPool pool(1);
  auto g = LlamaGraph::Create(**m, 8, 8, &pool);
  if (!g.ok()) return g.status();
  std::vector<int32_t> toks = {1, 2, 3};
  for (int32_t& t : toks) t %= (*m)->config.vocab_size;
  std::vector<float> logits((*m)->config.vocab_size);
  return (*g)->Forward(toks.data(), toks.size(), 0, false, logits.data());
}

// Offset of the tensor-info fields that follow a tensor's name in the GGUF header.
size_t InfoAfterName(const std::string& bytes, const std::string& name) {
  std::string key;
  uint64_t len = name.size();
  key.append(reinterpret_cast<const char*>(&len), 8);
  key += name;
  size_t at = bytes.find(key);
  EXPECT_NE(at, std::string::npos) << name;
  return at + key.size();
}

template <typename T>
void Poke(std::string* b, size_t off, T v) {
  std::memcpy(b->data() + off, &v, sizeof v);
}

TEST(CorruptGguf, BaseFileLoads) { EXPECT_TRUE(LoadAndRun(StoriesGguf()).ok()); }

TEST(CorruptGguf, TruncationAtEveryRegionIsAnError) {
  const std::string base = Read(StoriesGguf());
  std::vector<size_t> cuts = {0, 1, 4, 7, 8, 15, 16, 23, 24, 25, 40, 100, 1000};
  for (size_t c = 2000; c < base.size(); c += base.size() / 97) cuts.push_back(c);
  cuts.push_back(base.size() - 1);
  // Past the end of the last tensor's data only alignment padding is lost: a cut
  // there must load correctly; any earlier cut must be an error.
  auto m = MappedFile::Open(StoriesGguf());
  ASSERT_TRUE(m.ok());
  auto g = GgufFile::Parse(m->data(), m->size(), "base");
  ASSERT_TRUE(g.ok());
  size_t data_end = 0;
  for (const auto& t : (*g)->tensors()) data_end = std::max<size_t>(data_end, t.data + t.nbytes - m->data());
  cuts.push_back(data_end - 1);
  cuts.push_back(data_end);
  for (size_t c : cuts) {
    Status st = LoadAndRun(Write("trunc.gguf", base.substr(0, c)));
    if (c < data_end) {
      EXPECT_FALSE(st.ok()) << "cut at " << c;
      EXPECT_FALSE(st.message().empty());
    } else {
      EXPECT_TRUE(st.ok()) << "cut at " << c << " (only padding lost): " << st.message();
    }
  }
}

TEST(CorruptGguf, NamedBreakagesGiveClearErrors) {
  const std::string base = Read(StoriesGguf());
  const size_t info = InfoAfterName(base, "blk.0.attn_q.weight");  // n_dims u32, dims u64 x2, type u32, offset u64
  struct Case {
    const char* what;
    std::function<void(std::string*)> mutate;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"wrong magic", [](std::string* b) { (*b)[3] = 'X'; }, "not a GGUF file"},
      {"version 1", [](std::string* b) { Poke<uint32_t>(b, 4, 1); }, "version 1"},
      {"version 99", [](std::string* b) { Poke<uint32_t>(b, 4, 99); }, "version 99"},
      {"absurd tensor count", [](std::string* b) { Poke<uint64_t>(b, 8, uint64_t{1} << 40); }, "tensor count"},
      {"absurd metadata count", [](std::string* b) { Poke<uint64_t>(b, 16, uint64_t{1} << 40); }, "metadata count"},
      {"zero dimensions", [&](std::string* b) { Poke<uint32_t>(b, info, 0); }, "dimensions"},
      {"absurd dimension", [&](std::string* b) { Poke<uint64_t>(b, info + 4, uint64_t{1} << 62); }, "absurd"},
      {"unknown tensor type", [&](std::string* b) { Poke<uint32_t>(b, info + 20, 99); }, "unknown type 99"},
      {"data past EOF", [&](std::string* b) { Poke<uint64_t>(b, info + 24, uint64_t{1} << 30); }, "past the end"},
      {"misaligned offset", [&](std::string* b) { Poke<uint64_t>(b, info + 24, 3); }, "alignment"},
      {"shape does not match the model", [&](std::string* b) { Poke<uint64_t>(b, info + 4, 32); }, "attn_q"},
  };
  for (const Case& c : cases) {
    std::string b = base;
    c.mutate(&b);
    Status st = LoadAndRun(Write("named.gguf", b));
    ASSERT_FALSE(st.ok()) << c.what;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.what << ": " << st.message();
  }
}

TEST(CorruptGguf, NanAndInfScalesDoNotCrash) {
  std::string b = Read(StoriesGguf());
  auto g = GgufFile::Open(StoriesGguf());
  ASSERT_TRUE(g.ok());
  const GgufTensorInfo* t = (*g)->FindTensor("blk.1.attn_k.weight");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->type, GgmlType::kQ8_0);
  // Locate the tensor in the file by its data pointer relative to the map start.
  auto m = MappedFile::Open(StoriesGguf());
  ASSERT_TRUE(m.ok());
  auto g2 = GgufFile::Parse(m->data(), m->size(), "x");
  ASSERT_TRUE(g2.ok());
  const size_t file_off = (*g2)->FindTensor("blk.1.attn_k.weight")->data - m->data();
  Poke<uint16_t>(&b, file_off, 0x7E00);       // NaN scale in the first block
  Poke<uint16_t>(&b, file_off + 34, 0x7C00);  // +Inf in the second
  Status st = LoadAndRun(Write("nan.gguf", b));
  EXPECT_TRUE(st.ok()) << st.message();  // well-formed file, numerically poisoned: runs
}

TEST(CorruptGguf, RandomMutationsNeverCrash) {
  const std::string base = Read(StoriesGguf());
  std::mt19937_64 rng(12345);
  int errors = 0, loads = 0;
  for (int i = 0; i < 300; ++i) {
    std::string b = base;
    const int flips = 1 + rng() % 4;
    for (int f = 0; f < flips; ++f) {
      // Mostly the header (where structure lives), sometimes anywhere.
      size_t limit = (rng() % 4 == 0) ? b.size() : std::min<size_t>(b.size(), 16384);
      size_t at = rng() % limit;
      switch (rng() % 3) {
        case 0: b[at] = static_cast<char>(rng()); break;
        case 1: b[at] ^= static_cast<char>(1u << (rng() % 8)); break;
        default: if (at + 8 <= b.size()) Poke<uint64_t>(&b, at, rng()); break;
      }
    }
    Status st = LoadAndRun(Write("random.gguf", b));
    (st.ok() ? loads : errors)++;
    if (!st.ok()) {
      ASSERT_FALSE(st.message().empty());
    }
  }
  EXPECT_GT(errors, 0);
  std::printf("random GGUF mutations: %d rejected with an error, %d loaded and ran\n", errors, loads);
}

TEST(CorruptLlama2c, RandomHeaderMutationsNeverCrash) {
  const std::string base = Read(test::SourceDir() + "/models/stories260K/stories260K.bin");
  std::mt19937_64 rng(777);
  for (int i = 0; i < 200; ++i) {
    std::string b = base;
    const size_t field = rng() % 7;
    const int32_t values[] = {0, -1, 1, 2, 3, INT32_MIN, INT32_MAX, 1 << 20, 513, 4096};
    Poke<int32_t>(&b, field * 4, values[rng() % 10]);
    Status st = LoadAndRun(Write("random.bin", b));
    if (!st.ok()) {
      ASSERT_FALSE(st.message().empty());
    }
  }
}

}  // namespace
}  // namespace edgeq
