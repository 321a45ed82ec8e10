// Model loading and the forward pass: golden greedy text, engine vs the scalar
// reference, prefill vs decode, and broken model files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "model/dummy.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/reference.h"
#include "runtime/session.h"
#include "test_util.h"

namespace edgeq {
namespace {

std::string Stories() { return test::SourceDir() + "/models/stories260K/stories260K.bin"; }
std::string Tok512() { return test::SourceDir() + "/models/stories260K/tok512.bin"; }

std::unique_ptr<Model> MustLoad(const std::string& path, const std::string& tok = "") {
  auto m = LoadModel({path, tok});
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// Tolerance from forward error analysis. Each matmul with inner length n computes a
// dot product whose rounding error is bounded by gamma_n * sum|w_i x_i|, gamma_n =
// n*u/(1-n*u), u = 2^-24. The engine and the reference differ only in summation
// order, so each differs from the exact value by at most that bound. Along the
// residual path a logit passes through k = 4*n_layers + 1 sequential matmuls
// (q/k/v, o, gate/up, down, classifier), giving a relative bound k*gamma_nmax per
// unit of |logit| scale; we allow a factor kAmplify = 16 for the amplification by
// RMSNorm, softmax and SwiGLU (their condition numbers on these models are O(1-10)).
double LogitTolerance(const ModelConfig& c, double logit_scale) {
  const double u = std::ldexp(1.0, -24);
  const double n = std::max({c.dim, c.hidden_dim, c.n_heads * c.head_dim});
  const double gamma = n * u / (1 - n * u);
  const double k = 4.0 * c.n_layers + 1;
  const double kAmplify = 16.0;
  return kAmplify * k * gamma * std::max(1.0, logit_scale);
}

void CompareEngineWithReference(const Model& m, const std::vector<int32_t>& prompt, int n_decode) {
  const ModelConfig& c = m.config;
  ThreadPool pool(2);
  auto g = LlamaGraph::Create(m, 64, 16, &pool);
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto ref = ReferenceForward::Create(m, 64);
  ASSERT_TRUE(ref.ok());
  // Prefill the prompt in one call (chunks of 16), all logits.
  std::vector<float> logits(prompt.size() * c.vocab_size);
  ASSERT_TRUE((*g)->Forward(prompt.data(), prompt.size(), 0, true, logits.data()).ok());
  double max_err = 0, tol_used = 0;
  for (size_t p = 0; p < prompt.size(); ++p) {
    auto r = ref->Step(prompt[p], p);
    ASSERT_TRUE(r.ok());
    double scale = 0;
    for (float v : *r) scale = std::max(scale, std::fabs(double(v)));
    const double tol = LogitTolerance(c, scale);
    tol_used = tol;
    for (int32_t i = 0; i < c.vocab_size; ++i) {
      double e = std::fabs(double(logits[p * c.vocab_size + i]) - (*r)[i]);
      max_err = std::max(max_err, e);
      ASSERT_LE(e, tol) << "prefill position " << p << " logit " << i;
    }
  }
  // Then decode (matrix-vector path) greedily.
  int32_t tok = prompt.back();
  std::vector<float> one(c.vocab_size);
  for (int s = 0; s < n_decode; ++s) {
    tok = static_cast<int32_t>(std::max_element(logits.end() - c.vocab_size, logits.end()) - (logits.end() - c.vocab_size));
    const int32_t pos = prompt.size() + s;
    ASSERT_TRUE((*g)->Forward(&tok, 1, pos, false, one.data()).ok());
    auto r = ref->Step(tok, pos);
    ASSERT_TRUE(r.ok());
    double scale = 0;
    for (float v : *r) scale = std::max(scale, std::fabs(double(v)));
    const double tol = LogitTolerance(c, scale);
    for (int32_t i = 0; i < c.vocab_size; ++i) {
      double e = std::fabs(double(one[i]) - (*r)[i]);
      max_err = std::max(max_err, e);
      ASSERT_LE(e, tol) << "decode position " << pos << " logit " << i;
    }
    std::copy(one.begin(), one.end(), logits.end() - c.vocab_size);
  }
  std::printf("max |engine - reference| logit error %.3g (tolerance %.3g)\n", max_err, tol_used);
}

TEST(Model, LoadsStories260K) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config.dim, 64);
  EXPECT_EQ(m->config.hidden_dim, 172);
  EXPECT_EQ(m->config.n_layers, 5);
  EXPECT_EQ(m->config.n_heads, 8);
  EXPECT_EQ(m->config.n_kv_heads, 4);
  EXPECT_EQ(m->config.vocab_size, 512);
  EXPECT_EQ(m->config.context_length, 512);
  EXPECT_TRUE(m->config.tied_embeddings);
  EXPECT_EQ(m->format, "llama2c-v0");
}

TEST(Model, EngineMatchesReferenceStories260K) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  CompareEngineWithReference(*m, {1, 403, 407, 261, 378, 275, 260, 1009 % 512, 30, 45, 11, 66, 77, 88, 99, 100, 101, 102, 103}, 12);
}

TEST(Model, EngineMatchesReferenceRef6mGguf) {
  REQUIRE_SHARED();
  auto m = MustLoad(test::SharedDir() + "/models/ref6m/ref6m-f32.gguf");
  ASSERT_TRUE(m);
  CompareEngineWithReference(*m, {1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900}, 8);
}

TEST(Model, Ref6mGgufAndLlama2cGiveSameLogits) {
  REQUIRE_SHARED();
  const std::string d = test::SharedDir() + "/models/ref6m/";
  auto a = MustLoad(d + "ref6m-f32.gguf");
  auto b = MustLoad(d + "ref6m.bin", d + "tokenizer.bin");
  ASSERT_TRUE(a && b);
  ThreadPool pool(1);
  auto ga = LlamaGraph::Create(*a, 32, 32, &pool);
  auto gb = LlamaGraph::Create(*b, 32, 32, &pool);
  ASSERT_TRUE(ga.ok() && gb.ok());
  std::vector<int32_t> toks = {1, 10, 20, 30, 40, 50, 60, 70};
  std::vector<float> la(a->config.vocab_size), lb(b->config.vocab_size);
  ASSERT_TRUE((*ga)->Forward(toks.data(), toks.size(), 0, false, la.data()).ok());
  ASSERT_TRUE((*gb)->Forward(toks.data(), toks.size(), 0, false, lb.data()).ok());
  for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(la[i], lb[i]) << i;  // same weights, same code: identical
}

TEST(Model, PrefillChunkingDoesNotChangeLogits) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  std::vector<int32_t> toks;
  for (int i = 0; i < 40; ++i) toks.push_back((i * 37 + 5) % 512);
  toks[0] = 1;
  ThreadPool pool(2);
  std::vector<float> a(512), b(512);
  {
    auto g = LlamaGraph::Create(*m, 64, 64, &pool);
    ASSERT_TRUE((*g)->Forward(toks.data(), toks.size(), 0, false, a.data()).ok());
  }
  {
    auto g = LlamaGraph::Create(*m, 64, 7, &pool);  // odd chunk size
    ASSERT_TRUE((*g)->Forward(toks.data(), toks.size(), 0, false, b.data()).ok());
  }
  for (int i = 0; i < 512; ++i) ASSERT_EQ(a[i], b[i]);
}

TEST(Model, ThreadCountDoesNotChangeLogits) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  std::vector<int32_t> toks = {1, 50, 60, 70, 80};
  std::vector<float> a(512), b(512);
  ThreadPool p1(1), p3(3), p8(8);
  auto g1 = LlamaGraph::Create(*m, 16, 16, &p1);
  auto g3 = LlamaGraph::Create(*m, 16, 16, &p3);
  auto g8 = LlamaGraph::Create(*m, 16, 16, &p8);
  std::vector<float> c(512);
  ASSERT_TRUE((*g1)->Forward(toks.data(), toks.size(), 0, false, a.data()).ok());
  ASSERT_TRUE((*g3)->Forward(toks.data(), toks.size(), 0, false, b.data()).ok());
  ASSERT_TRUE((*g8)->Forward(toks.data(), toks.size(), 0, false, c.data()).ok());
  for (int i = 0; i < 512; ++i) ASSERT_EQ(a[i], b[i]);
  for (int i = 0; i < 512; ++i) ASSERT_EQ(a[i], c[i]);
  // Decode: attention items are the heads sharing a KV head (both of stories260K's per
  // item on 1 and 3 threads), cut into one head per item when threads outnumber the
  // 4 KV heads (8 threads). The logits stay the same.
  for (int32_t pos = 5; pos < 12; ++pos) {
    const int32_t tok = 100 + pos;
    ASSERT_TRUE((*g1)->Forward(&tok, 1, pos, false, a.data()).ok());
    ASSERT_TRUE((*g3)->Forward(&tok, 1, pos, false, b.data()).ok());
    ASSERT_TRUE((*g8)->Forward(&tok, 1, pos, false, c.data()).ok());
    for (int i = 0; i < 512; ++i) ASSERT_EQ(a[i], b[i]) << "decode position " << pos;
    for (int i = 0; i < 512; ++i) ASSERT_EQ(a[i], c[i]) << "decode position " << pos;
  }
}

TEST(Model, ForwardRejectsContextOverflowAndBadTokens) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  auto g = LlamaGraph::Create(*m, 8, 8, &pool);
  std::vector<int32_t> toks(9, 1);
  std::vector<float> l(512);
  Status st = (*g)->Forward(toks.data(), 9, 0, false, l.data());
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  int32_t bad = 512;
  st = (*g)->Forward(&bad, 1, 0, false, l.data());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos);
}

// Continuous batching: three sequences, prefilled and decoded interleaved in mixed
// batches, give exactly the logits each gets alone (the matmuls are row-independent
// and attention reads only the token's own sequence).
TEST(Model, MixedSequenceBatchesMatchSeparateRuns) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 403, 261, 290, 345, 54}, {1, 72, 11}, {1, 300, 301, 302, 303, 304, 305, 306, 307}};
  ThreadPool pool(2);
  // Alone: each prompt, then 4 greedy steps.
  std::vector<std::vector<float>> alone;  // logits after each step, per sequence
  std::vector<std::vector<int32_t>> next_tokens(3);
  for (int s = 0; s < 3; ++s) {
    auto g = LlamaGraph::Create(*m, 32, 16, &pool);
    ASSERT_TRUE(g.ok());
    std::vector<float> l(512);
    ASSERT_TRUE((*g)->Forward(prompts[s].data(), prompts[s].size(), 0, false, l.data()).ok());
    int32_t pos = prompts[s].size();
    for (int step = 0; step < 4; ++step) {
      alone.push_back(l);
      int32_t t = ArgMax(l.data(), 512);
      next_tokens[s].push_back(t);
      ASSERT_TRUE((*g)->Forward(&t, 1, pos++, false, l.data()).ok());
    }
    alone.push_back(l);
  }
  // Together: sequence 1's prompt first, then 0 and 2's prompts mixed with 1's decode.
  auto g = LlamaGraph::Create(*m, 32, 16, &pool, /*n_seq=*/3);
  ASSERT_TRUE(g.ok());
  std::vector<float> out(3 * 512);
  std::vector<BatchToken> b;
  for (size_t i = 0; i < prompts[1].size(); ++i) b.push_back({prompts[1][i], 1, int32_t(i), i + 1 == prompts[1].size()});
  ASSERT_TRUE((*g)->ForwardBatch(b.data(), b.size(), out.data()).ok());
  std::vector<std::vector<float>> got(3);
  got[1].insert(got[1].end(), out.begin(), out.begin() + 512);
  b.clear();
  b.push_back({next_tokens[1][0], 1, int32_t(prompts[1].size()), true});
  for (int s : {0, 2}) {
    for (size_t i = 0; i < prompts[s].size(); ++i) b.push_back({prompts[s][i], s, int32_t(i), i + 1 == prompts[s].size()});
  }
  ASSERT_LE(b.size(), 16u);
  ASSERT_TRUE((*g)->ForwardBatch(b.data(), b.size(), out.data()).ok());
  got[1].insert(got[1].end(), out.begin(), out.begin() + 512);
  got[0].insert(got[0].end(), out.begin() + 512, out.begin() + 1024);
  got[2].insert(got[2].end(), out.begin() + 1024, out.begin() + 1536);
  // Decode all three together for the remaining steps.
  for (int step = 0; step < 4; ++step) {
    b.clear();
    for (int s = 0; s < 3; ++s) {
      const int done = static_cast<int>(got[s].size() / 512);  // steps with logits so far
      if (done > 4) continue;
      b.push_back({next_tokens[s][done - 1], s, int32_t(prompts[s].size()) + done - 1, true});
    }
    if (b.empty()) break;
    ASSERT_TRUE((*g)->ForwardBatch(b.data(), b.size(), out.data()).ok());
    for (size_t i = 0; i < b.size(); ++i) {
      got[b[i].seq].insert(got[b[i].seq].end(), out.begin() + i * 512, out.begin() + (i + 1) * 512);
    }
  }
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(got[s].size(), 5u * 512);
    for (int step = 0; step < 5; ++step) {
      for (int i = 0; i < 512; ++i) ASSERT_EQ(got[s][step * 512 + i], alone[s * 5 + step][i]) << s << " " << step;
    }
  }
  // A bad sequence id or position is an error, not a write out of bounds.
  BatchToken bad{1, 3, 0, true};
  EXPECT_EQ((*g)->ForwardBatch(&bad, 1, out.data()).code(), StatusCode::kInvalidArgument);
  bad = {1, 0, 32, true};
  EXPECT_EQ((*g)->ForwardBatch(&bad, 1, out.data()).code(), StatusCode::kOutOfRange);
}

// ---- broken llama2.c files -------------------------------------------------------

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  std::string p = test::TempDir() + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});

}

TEST(Model, TruncatedLlama2cCheckpointIsAnError) {
  std::string full = ReadAll(Stories());
  for (size_t len : {size_t{0}, size_t{3}, size_t{27}, size_t{28}, size_t{1000}, full.size() / 2, full.size() - 1}) {
    std::string p = WriteTemp("trunc.bin", full.substr(0, len));
    auto m = LoadModel({p, Tok512()});
    ASSERT_FALSE(m.ok()) << "length " << len;
    EXPECT_FALSE(m.status().message().empty());
  }
}

TEST(Model, AbsurdLlama2cHeaderIsAnError) {
  std::string full = ReadAll(Stories());
  int32_t hdr[7];
  std::memcpy(hdr, full.data(), sizeof hdr);
  const int32_t bad_values[][7] = {
      {1 << 30, 172, 5, 8, 4, 512, 512},  // dim
      {64, 172, 5, 8, 3, 512, 512},       // kv heads do not divide heads
      {64, 172, -5, 8, 4, 512, 512},      // layers
      {64, 172, 5, 0, 4, 512, 512},       // heads
      {64, 172, 5, 8, 4, 0, 512},         // vocab
      {64, 172, 5, 8, 4, 512, -1},        // seq len
      {64, 172, 100000, 8, 4, 512, 512},  // more layers than the file holds
      {64, 172, 5, 8, 4, INT32_MIN, 512}, // untied flag on INT32_MIN (fuzzer find: negation overflow)
  };
  for (const auto& v : bad_values) {
    std::string bytes = full;
    std::memcpy(bytes.data(), v, sizeof v);
    std::string p = WriteTemp("absurd.bin", bytes);
    auto m = LoadModel({p, Tok512()});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status().message();
  }
}

TEST(Model, MissingTokenizerIsAnError) {
  auto m = LoadModel({Stories(), ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("-z"), std::string::npos) << m.status().message();
  auto m2 = LoadModel({Stories(), "/nonexistent/tok.bin"});
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.status().message().find("/nonexistent/tok.bin"), std::string::npos) << m2.status().message();
}

// ---- sessions ----------------------------------------------------------------------

TEST(Session, StopMatcherHoldsBackPartialStops) {
  StopMatcher s({"END", "xyz"});
  bool stopped = false;
  EXPECT_EQ(s.Push("hello E", &stopped), "hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(s.Push("N", &stopped), "");
  EXPECT_EQ(s.Push("D and more", &stopped), "");
  EXPECT_TRUE(stopped);
  StopMatcher t({"END"});
  EXPECT_EQ(t.Push("E", &stopped), "");
  EXPECT_EQ(t.Push("x", &stopped), "Ex");
  EXPECT_FALSE(stopped);
}

TEST(Sampler, GreedyAndSeededDeterminism) {
  std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
  SamplerParams g;
  g.temperature = 0;
  Sampler greedy(g, 5);
  auto l = logits;
  EXPECT_EQ(greedy.Sample(l.data(), nullptr, 0), 1);
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  Sampler a(p, 5), b(p, 5);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 2000; ++i) {
    auto la = logits, lb = logits;
    int x = a.Sample(la.data(), nullptr, 0);
    ASSERT_EQ(x, b.Sample(lb.data(), nullptr, 0));
    ++counts[x];
  }
  // Softmax probabilities: token 1 ~0.44, token 3 ~0.022: sampled frequencies agree.
  EXPECT_NEAR(counts[1] / 2000.0, 0.437, 0.05);
  EXPECT_NEAR(counts[3] / 2000.0, 0.022, 0.015);
}

TEST(Sampler, TopKAndMinPRestrictCandidates) {
  std::vector<float> logits = {5.0f, 4.9f, 0.0f, -3.0f};
  SamplerParams p;
  p.temperature = 5.0f;  // flat, so only the filters keep the low tokens out
  p.top_k = 2;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p, 4);
  for (int i = 0; i < 500; ++i) {
    auto l = logits;
    int x = s.Sample(l.data(), nullptr, 0);
    ASSERT_TRUE(x == 0 || x == 1);
  }
  p.top_k = 0;
  p.min_p = 0.5f;  // token 2 has p/pmax = e^-5: filtered
  Sampler s2(p, 4);
  for (int i = 0; i < 500; ++i) {
    auto l = logits;
    int x = s2.Sample(l.data(), nullptr, 0);
    ASSERT_TRUE(x == 0 || x == 1);
  }
}

TEST(Sampler, PenaltiesLowerRepeatedTokens) {
  std::vector<float> logits = {2.0f, 1.9f};
  SamplerParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  Sampler s(p, 2);
  int32_t hist[] = {0};
  auto l = logits;
  EXPECT_EQ(s.Sample(l.data(), hist, 1), 1);
  p.presence_penalty = 0;
  p.repeat_penalty = 1.1f;  // 2.0/1.1 = 1.82 < 1.9
  Sampler s2(p, 2);
  l = logits;
  EXPECT_EQ(s2.Sample(l.data(), hist, 1), 1);
}


}  // namespace
}  // namespace edgeq

namespace edgeq {
namespace {

// Writes stories260K in llama2.c's versioned layouts (export.py's version1_export and
// version2_export) and checks they load to the same model.
struct Bytes {
  std::string b;
  template <typename T>
  void Put(T v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void PutF(const float* p, int64_t n) { b.append(reinterpret_cast<const char*>(p), n * 4); }
};

std::vector<float> AllRows(const Tensor2D& t) {
  std::vector<float> v(t.rows * t.cols);
  for (int64_t r = 0; r < t.rows; ++r) GetRowF32(t, r, v.data() + r * t.cols);
  return v;
}

std::string VersionedCheckpoint(const Model& m, int version, int group) {
  const ModelConfig& c = m.config;
  Bytes out;
  out.Put<uint32_t>(0x616b3432);
  out.Put<int32_t>(version);
  for (int32_t v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.context_length}) out.Put(v);
  out.Put<uint8_t>(1);  // shared classifier
  if (version == 2) out.Put<int32_t>(group);
  out.b.resize(256, '\0');
  const auto& w = m.weights;
  for (const auto& l : w.layers) out.PutF(l.attn_norm, c.dim);
  for (const auto& l : w.layers) out.PutF(l.ffn_norm, c.dim);
  out.PutF(w.output_norm, c.dim);
  std::vector<std::vector<float>> mats = {AllRows(w.token_embd)};
  for (auto f : {&LayerWeights::wq, &LayerWeights::wk, &LayerWeights::wv, &LayerWeights::wo, &LayerWeights::w_gate,
                 &LayerWeights::w_down, &LayerWeights::w_up}) {
    for (const auto& l : w.layers) mats.push_back(AllRows(l.*f));
  }
  if (version == 1) {
    for (const auto& v : mats) out.PutF(v.data(), v.size());
    return out.b;
  }
  std::vector<float> scales;
  for (const auto& v : mats) {  // int8 groups, scales after all of them
    for (size_t g = 0; g < v.size(); g += group) {
      float amax = 0;
      for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(v[g + i]));
      const float s = amax / 127.0f;
      scales.push_back(s);
      for (int i = 0; i < group; ++i) out.Put<int8_t>(static_cast<int8_t>(std::lround(s > 0 ? v[g + i] / s : 0)));
    }
  }
  out.PutF(scales.data(), scales.size());
  return out.b;
}

TEST(Model, Llama2cVersion1And2Load) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  std::vector<int32_t> toks = {1, 403, 407, 261, 378};
  ThreadPool pool(1);
  auto logits = [&](const Model& mm) {
    auto g = LlamaGraph::Create(mm, 16, 16, &pool);
    std::vector<float> l(512);
    EXPECT_TRUE((*g)->Forward(toks.data(), toks.size(), 0, false, l.data()).ok());
    return l;
  };
  const auto base = logits(*m);
  for (int version : {1, 2}) {
    std::string p = WriteTemp("v" + std::to_string(version) + ".bin", VersionedCheckpoint(*m, version, 32));
    auto v = LoadModel({p, Tok512()});
    ASSERT_TRUE(v.ok()) << v.status().message();
    EXPECT_EQ((*v)->format, "llama2c-v" + std::to_string(version));
    const auto l = logits(**v);
    double err = 0;
    for (int i = 0; i < 512; ++i) err = std::max(err, double(std::fabs(l[i] - base[i])));
    if (version == 1) EXPECT_EQ(err, 0.0);  // same fp32 weights
    else EXPECT_LT(err, 0.25) << "int8 groups of 32";
    // Truncated versioned files are errors.
    std::string full = VersionedCheckpoint(*m, version, 32);
    auto t = LoadModel({WriteTemp("vt.bin", full.substr(0, full.size() - 5)), Tok512()});
    EXPECT_FALSE(t.ok());
  }
}


// Resource exhaustion: a model or a KV cache that cannot fit is refused, with the sizes,
// before anything large is allocated (core/memory_budget.h).
struct ScopedMemoryLimit {
  explicit ScopedMemoryLimit(const char* v) { setenv("EDGEQ_MEMORY_LIMIT_BYTES", v, 1); }
  ~ScopedMemoryLimit() { unsetenv("EDGEQ_MEMORY_LIMIT_BYTES"); }
};

TEST(Memory, ModelLargerThanTheLimitIsRefusedWithItsSize) {
  {
    ScopedMemoryLimit lim("790000");
    auto m = LoadModel({Stories(), Tok512()});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(m.status().message().find("model " + Stories() + " needs "), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("only 771.5 KiB of memory is available (EDGEQ_MEMORY_LIMIT_BYTES)"),
              std::string::npos) << m.status().message();
  }
  auto m = MustLoad(Stories(), Tok512());  // the limit gone, the same model loads
  ASSERT_TRUE(m);
  const ModelMemory mm = EstimateModelMemory(*m);
  EXPECT_EQ(mm.weight_bytes, 260032u * 4);  // every parameter once, in fp32 (the head is tied)
  EXPECT_EQ(mm.repacked_bytes, 0u);
}

TEST(Memory, KvCacheOverTheLimitIsRefusedAndAGraphThatFitsRuns) {
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  {
    ScopedMemoryLimit lim("2000000");  // 64 sequences x 512 tokens = 40 MiB of KV cache
    auto g = LlamaGraph::Create(*m, 512, 16, &pool, 64);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(g.status().message().find("KV cache 40.0 MiB"), std::string::npos) << g.status().message();
    EXPECT_NE(g.status().message().find("1.9 MiB of memory is available"), std::string::npos) << g.status().message();
    auto small = LlamaGraph::Create(*m, 64, 16, &pool, 1);  // 80 KiB: fits
    ASSERT_TRUE(small.ok()) << small.status().message();
    int32_t tok = 1;
    std::vector<float> l(512);
    EXPECT_TRUE((*small)->Forward(&tok, 1, 0, false, l.data()).ok());
  }
}

TEST(Memory, KvCacheLargerThanThisMachinesMemoryIsRefusedWithoutTheOverride) {
  // The real figure (MemAvailable / cgroup): 4096 sequences x 2^24 tokens is ~80 TiB.
  auto m = MustLoad(Stories(), Tok512());
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  auto g = LlamaGraph::Create(*m, 1 << 24, 16, &pool, 4096);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(g.status().message().find("KV cache 81920.00 GiB"), std::string::npos) << g.status().message();
  EXPECT_NE(g.status().message().find("of memory is available ("), std::string::npos) << g.status().message();
}

// bench --dummy shapes are the real models' (the speed figures of docs/performance.md
// stand for those models): each shape's parameter count, from its hyperparameters,
// against the count published for the model (Hugging Face model cards / safetensors
// metadata; stories15m/110m: llama2.c's checkpoints, classifier shared).
TEST(DummyShapes, ParameterCountsAreThePublishedModels) {
  const std::pair<const char*, int64_t> published[] = {
      {"stories15m", 15191712},         {"stories110m", 109529856},    {"smollm2-135m", 134515008},
      {"qwen2.5-0.5b", 494032768},      {"tinyllama-1.1b", 1100048384}, {"llama3.2-1b", 1235814400},
  };
  for (const auto& [name, want] : published) {
    SCOPED_TRACE(name);
    auto c = DummyShapeConfig(name);
    ASSERT_TRUE(c.ok()) << c.status().message();
    const int64_t d = c->dim, q = int64_t{c->n_heads} * c->head_dim, kv = int64_t{c->n_kv_heads} * c->head_dim;
    const int64_t per_layer = d * q + 2 * d * kv + q * d + 3 * d * c->hidden_dim + 2 * d + (c->qkv_bias ? q + 2 * kv : 0);
    const int64_t embed = int64_t{c->vocab_size} * d * (c->tied_embeddings ? 1 : 2);
    EXPECT_EQ(embed + c->n_layers * per_layer + d, want);
  }
  EXPECT_FALSE(DummyShapeConfig("llama-7b").ok());
}

}  // namespace
}  // namespace edgeq
