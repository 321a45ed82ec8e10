// No heap allocation per decoded token: this executable replaces the global operator
// new with a counting one and runs decode steps (float weights, and quantized weights
// through the packed integer kernels).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "model/llama.h"
#include "model/model.h"
#include "model/quantize.h"
#include "runtime/sampler.h"
#include "test_util.h"

namespace {
std::atomic<long> g_allocs{0};
}

// The replacements pair malloc with free on purpose; GCC's -Wmismatched-new-delete sees
// only "free on a pointer from operator new".
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace edgeq {
namespace {

std::unique_ptr<Model> Stories() {
  const std::string dir = test::SourceDir() + "/models/stories260K/";
  auto m = LoadModel({dir + "stories260K.bin", dir + "tok512.bin"});
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

long DecodeAllocations(const Model& m) {
  ThreadPool pool(2);
  auto g = LlamaGraph::Create(m, 128, 16, &pool);
  EXPECT_TRUE(g.ok());
  std::vector<float> logits(m.config.vocab_size);
  int32_t prompt[4] = {1, 403, 261, 290};
  EXPECT_TRUE((*g)->Forward(prompt, 4, 0, false, logits.data()).ok());
  int32_t tok = ArgMax(logits.data(), m.config.vocab_size);
  const long before = g_allocs.load();
  for (int32_t pos = 4; pos < 40; ++pos) {
    EXPECT_TRUE((*g)->Forward(&tok, 1, pos, false, logits.data()).ok());
    tok = ArgMax(logits.data(), m.config.vocab_size);
  }
  return g_allocs.load() - before;
}

TEST(NoAllocation, DecodeStepsAllocateNothingWithFloatWeights) {
  auto m = Stories();
  ASSERT_TRUE(m);
  EXPECT_EQ(DecodeAllocations(*m), 0);
}

TEST(NoAllocation, DecodeStepsAllocateNothingWithPackedIntegerWeights) {
  auto m = Stories();
  ASSERT_TRUE(m);
  for (const char* scheme : {"w8a8", "w4a8-g32", "w4a8-g64a"}) {
    auto q = QuantizeInMemory(*m, scheme, 2);
    ASSERT_TRUE(q.ok()) << q.status().message();
    ASSERT_NE((*q)->weights.layers[0].wq.packed, nullptr) << scheme << ": weights were not repacked";
    EXPECT_EQ(DecodeAllocations(**q), 0) << scheme;
  }
}

}  // namespace
}  // namespace edgeq
