// Hugging Face directories (config.json + safetensors + tokenizer.json): loading,
// RoPE pair order (HF checkpoints rotate halves; GGUF llama rotates adjacent pairs),
// dtypes, sharding, qwen2/qwen3 blocks, and conversion to GGUF.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/fp16.h"
#include "format/safetensors.h"
#include "model/convert.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/reference.h"
#include "nlohmann/json.hpp"
#include "test_util.h"

namespace edgeq {
namespace {

using Json = nlohmann::json;

std::string Stories() { return test::SourceDir() + "/models/stories260K/stories260K.bin"; }
std::string Tok512() { return test::SourceDir() + "/models/stories260K/tok512.bin"; }

// A byte-level BPE tokenizer.json with `n` tokens: the 256 GPT-2 byte characters,
// then filler pieces; no merges.
void WriteTokenizerJson(const std::string& dir, int n) {
  Json vocab = Json::object();
  int id = 0;
  for (int b = 0; b < 256 && id < n; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    static int extra = 0;
    if (b == 0) extra = 0;
    uint32_t cp = printable ? b : 256 + extra++;
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else { s += static_cast<char>(0xC0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
    vocab[s] = id++;
  }
  while (id < n - 1) {
    vocab["filler" + std::to_string(id)] = id;
    ++id;
  }
  Json j = {{"version", "1.0"},
            {"added_tokens", Json::array({{{"id", n - 1}, {"content", "<|endoftext|>"}, {"special", true}}})},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", Json::array()}}}};
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  Json cfg = {{"eos_token", "<|endoftext|>"}, {"add_bos_token", false}};
  std::ofstream(dir + "/tokenizer_config.json") << cfg.dump();
}

SafeTensorOut Encode(const std::string& name, const std::string& dtype, std::vector<uint64_t> shape,
                     const std::vector<float>& v) {
  SafeTensorOut t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  const size_t es = dtype == "F32" ? 4 : 2;
  t.bytes.resize(v.size() * es);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == "F32") std::memcpy(&t.bytes[i * 4], &v[i], 4);
    else {
      uint16_t h = dtype == "F16" ? Fp32ToFp16(v[i]) : Fp32ToBf16(v[i]);
      std::memcpy(&t.bytes[i * 2], &h, 2);
    }
  }
  return t;
}

std::vector<float> Rows(const Tensor2D& t) {
  std::vector<float> v(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) GetRowF32(t, r, v.data() + r * t.cols);
  return v;
}

// HF q/k row order from GGUF/llama2.c order: HF row h*hd + j*hd/2 + i holds
// original row h*hd + 2i + j.
std::vector<float> PermuteToHf(const std::vector<float>& w, int64_t rows, int64_t cols, int hd) {
  std::vector<float> out(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / hd, within = r % hd, i = within % (hd / 2), j = within / (hd / 2);
    const int64_t src = h * hd + 2 * i + j;
    std::memcpy(&out[r * cols], &w[src * cols], cols * 4);
  }
  return out;
}

// Writes stories260K as an HF llama checkpoint (shards: 2 files) in `dtype`.
std::string MakeHfStories(const std::string& name, const std::string& dtype, bool sharded) {
  auto m = LoadModel({Stories(), Tok512()});
  EXPECT_TRUE(m.ok());
  const Model& s = **m;
  const ModelConfig& c = s.config;
  std::string dir = test::TempDir() + "/" + name;
  mkdir(dir.c_str(), 0755);
  std::vector<SafeTensorOut> a, b;
  a.push_back(Encode("model.embed_tokens.weight", dtype, {512, 64}, Rows(s.weights.token_embd)));
  a.push_back(Encode("model.norm.weight", dtype, {64}, std::vector<float>(s.weights.output_norm, s.weights.output_norm + 64)));
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = s.weights.layers[l];
    auto& dst = (sharded && l >= 2) ? b : a;
    const std::string p = "model.layers." + std::to_string(l) + ".";
    dst.push_back(Encode(p + "input_layernorm.weight", dtype, {64}, std::vector<float>(w.attn_norm, w.attn_norm + 64)));
    dst.push_back(Encode(p + "post_attention_layernorm.weight", dtype, {64}, std::vector<float>(w.ffn_norm, w.ffn_norm + 64)));
    dst.push_back(Encode(p + "self_attn.q_proj.weight", dtype, {64, 64}, PermuteToHf(Rows(w.wq), 64, 64, 8)));
    dst.push_back(Encode(p + "self_attn.k_proj.weight", dtype, {32, 64}, PermuteToHf(Rows(w.wk), 32, 64, 8)));
    dst.push_back(Encode(p + "self_attn.v_proj.weight", dtype, {32, 64}, Rows(w.wv)));
    dst.push_back(Encode(p + "self_attn.o_proj.weight", dtype, {64, 64}, Rows(w.wo)));
    dst.push_back(Encode(p + "mlp.gate_proj.weight", dtype, {172, 64}, Rows(w.w_gate)));
    dst.push_back(Encode(p + "mlp.up_proj.weight", dtype, {172, 64}, Rows(w.w_up)));
    dst.push_back(Encode(p + "mlp.down_proj.weight", dtype, {64, 172}, Rows(w.w_down)));
  }
  Json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 64},
              {"intermediate_size", 172}, {"num_hidden_layers", 5}, {"num_attention_heads", 8},
              {"num_key_value_heads", 4}, {"vocab_size", 512}, {"max_position_embeddings", 512},
              {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", true}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  if (sharded) {
    EXPECT_TRUE(WriteSafetensors(dir + "/model-00001-of-00002.safetensors", a).ok());
    EXPECT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", b).ok());
    Json idx = {{"weight_map", Json::object()}};
    for (auto& t : a) idx["weight_map"][t.name] = "model-00001-of-00002.safetensors";
    for (auto& t : b) idx["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    std::ofstream(dir + "/model.safetensors.index.json") << idx.dump();
  } else {
    EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", a).ok());
  }
  WriteTokenizerJson(dir, 512);
  return dir;
}

std::vector<float> Logits(const Model& m, const std::vector<int32_t>& toks) {
  ThreadPool pool(1);
  auto g = LlamaGraph::Create(m, 32, 32, &pool);
  EXPECT_TRUE(g.ok()) << g.status().message();
  std::vector<float> out(m.config.vocab_size);
  EXPECT_TRUE((*g)->Forward(toks.data(), toks.size(), 0, false, out.data()).ok());
  return out;
}

const std::vector<int32_t> kToks = {1, 300, 301, 45, 77, 200, 13, 400, 3, 9};

TEST(HfModel, HalfSplitRopeCheckpointMatchesOriginal) {
  std::string dir = MakeHfStories("hf_f32", "F32", false);
  auto hf = LoadModel({dir, ""});
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_EQ((*hf)->config.rope_type, RopeType::kNeox);
  auto orig = LoadModel({Stories(), Tok512()});
  auto a = Logits(**hf, kToks), b = Logits(**orig, kToks);
  double max_err = 0;
  for (size_t i = 0; i < a.size(); ++i) max_err = std::max(max_err, double(std::fabs(a[i] - b[i])));
  // Same function, dot products summed in a different element order only.
  EXPECT_LT(max_err, 1e-4);
}

TEST(HfModel, ConvertToGgufRestoresAdjacentPairOrderExactly) {
  std::string dir = MakeHfStories("hf_conv", "F32", true);
  auto hf = LoadModel({dir, ""});
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  std::string out = test::TempDir() + "/hf_conv.gguf";
  ASSERT_TRUE(WriteModelGguf(**hf, out, {}).ok());
  auto g = LoadModel({out, ""});
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->config.rope_type, RopeType::kNormal);
  auto orig = LoadModel({Stories(), Tok512()});
  auto a = Logits(**g, kToks), b = Logits(**orig, kToks);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;  // identical weights and math
}

TEST(HfModel, Bf16AndF16CheckpointsLoad) {
  for (const char* dt : {"BF16", "F16"}) {
    std::string dir = MakeHfStories(std::string("hf_") + dt, dt, false);
    auto hf = LoadModel({dir, ""});
    ASSERT_TRUE(hf.ok()) << hf.status().message();
    EXPECT_EQ((*hf)->weights.layers[0].wq.type, std::string(dt) == "BF16" ? GgmlType::kBF16 : GgmlType::kF16);
    auto orig = LoadModel({Stories(), Tok512()});
    auto a = Logits(**hf, kToks), b = Logits(**orig, kToks);
    // 16-bit weights: a few percent of relative change at most on these logits.
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    EXPECT_LT(std::sqrt(num / den), std::string(dt) == "BF16" ? 0.05 : 0.01) << dt;
  }
}

TEST(HfModel, BrokenDirectoriesGiveClearErrors) {
  std::string dir = MakeHfStories("hf_broken", "F32", false);
  // Missing tensor: rewrite without one layer's q_proj.
  {
    auto st = SafetensorsFile::Open(dir + "/model.safetensors");
    ASSERT_TRUE(st.ok());
  }
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"llama\", \"hidden_size\": 64";  // truncated JSON
  auto m = LoadModel({dir, ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("config.json"), std::string::npos) << m.status().message();
  // Wrong JSON types (found by fuzzing: an exception escaped from nlohmann::json).
  std::ofstream(dir + "/config.json") << "{\"model_type\": 4}";
  m = LoadModel({dir, ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("config.json"), std::string::npos) << m.status().message();
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, "
                                         "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512, "
                                         "\"tie_word_embeddings\": \"yes\"}";
  m = LoadModel({dir, ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("tie_word_embeddings must be true or false"), std::string::npos) << m.status().message();
  std::ofstream(dir + "/config.json") << Json({{"model_type", "gpt_neox"}}).dump();
  m = LoadModel({dir, ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("gpt_neox"), std::string::npos) << m.status().message();
  std::string empty = test::TempDir() + "/hf_empty";
  mkdir(empty.c_str(), 0755);
  m = LoadModel({empty, ""});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("config.json"), std::string::npos) << m.status().message();
}

// A tiny random qwen2 (q/k/v bias) or qwen3 (q/k norm, head_dim != dim/heads).
std::string MakeHfQwen(const std::string& arch) {
  std::string dir = test::TempDir() + "/hf_" + arch;
  mkdir(dir.c_str(), 0755);
  const int D = 48, H = 96, L = 2, NH = 4, NKV = 2, HD = arch == "qwen3" ? 16 : 12, V = 300;
  uint64_t state = 42;
  auto rnd = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x = (static_cast<float>(state >> 40) / 16777216.0f - 0.5f) * 2 * scale;
    }
    return v;
  };
  std::vector<SafeTensorOut> t;
  t.push_back(Encode("model.embed_tokens.weight", "F32", {V, D}, rnd(V * D, 0.5f)));
  t.push_back(Encode("model.norm.weight", "F32", {D}, rnd(D, 1.0f)));
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back(Encode(p + "input_layernorm.weight", "F32", {D}, rnd(D, 1.0f)));
    t.push_back(Encode(p + "post_attention_layernorm.weight", "F32", {D}, rnd(D, 1.0f)));
    t.push_back(Encode(p + "self_attn.q_proj.weight", "F32", {uint64_t(NH * HD), D}, rnd(NH * HD * D, 0.3f)));
    t.push_back(Encode(p + "self_attn.k_proj.weight", "F32", {uint64_t(NKV * HD), D}, rnd(NKV * HD * D, 0.3f)));
    t.push_back(Encode(p + "self_attn.v_proj.weight", "F32", {uint64_t(NKV * HD), D}, rnd(NKV * HD * D, 0.3f)));
    t.push_back(Encode(p + "self_attn.o_proj.weight", "F32", {D, uint64_t(NH * HD)}, rnd(NH * HD * D, 0.3f)));
    if (arch == "qwen2") {
      t.push_back(Encode(p + "self_attn.q_proj.bias", "F32", {uint64_t(NH * HD)}, rnd(NH * HD, 0.2f)));
      t.push_back(Encode(p + "self_attn.k_proj.bias", "F32", {uint64_t(NKV * HD)}, rnd(NKV * HD, 0.2f)));
      t.push_back(Encode(p + "self_attn.v_proj.bias", "F32", {uint64_t(NKV * HD)}, rnd(NKV * HD, 0.2f)));
    } else {
      t.push_back(Encode(p + "self_attn.q_norm.weight", "F32", {uint64_t(HD)}, rnd(HD, 1.0f)));
      t.push_back(Encode(p + "self_attn.k_norm.weight", "F32", {uint64_t(HD)}, rnd(HD, 1.0f)));
    }
    t.push_back(Encode(p + "mlp.gate_proj.weight", "F32", {H, D}, rnd(H * D, 0.3f)));
    t.push_back(Encode(p + "mlp.up_proj.weight", "F32", {H, D}, rnd(H * D, 0.3f)));
    t.push_back(Encode(p + "mlp.down_proj.weight", "F32", {D, H}, rnd(H * D, 0.3f)));
  }
  t.push_back(Encode("lm_head.weight", "F32", {V, D}, rnd(V * D, 0.5f)));
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", t).ok());
  Json cfg = {{"model_type", arch}, {"hidden_size", D}, {"intermediate_size", H}, {"num_hidden_layers", L},
              {"num_attention_heads", NH}, {"num_key_value_heads", NKV}, {"head_dim", HD}, {"vocab_size", V},
              {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
              {"tie_word_embeddings", false}};
  std::ofstream(dir + "/config.json") << cfg.dump();
  WriteTokenizerJson(dir, V);
  return dir;
}

TEST(HfModel, QwenBlocksMatchReferenceAndSurviveConversion) {
  for (const char* arch : {"qwen2", "qwen3"}) {
    std::string dir = MakeHfQwen(arch);
    auto m = LoadModel({dir, ""});
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ((*m)->config.arch, arch);
    std::vector<int32_t> toks = {5, 17, 200, 33, 299, 0, 150};
    auto engine = Logits(**m, toks);
    auto ref = ReferenceForward::Create(**m, 32);
    ASSERT_TRUE(ref.ok());
    std::vector<float> r;
    for (size_t p = 0; p < toks.size(); ++p) r = *ref->Step(toks[p], p);
    for (size_t i = 0; i < r.size(); ++i) ASSERT_NEAR(engine[i], r[i], 1e-3) << arch << " logit " << i;
    std::string out = test::TempDir() + "/" + arch + ".gguf";
    ASSERT_TRUE(WriteModelGguf(**m, out, {}).ok());
    auto g = LoadModel({out, ""});
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ((*g)->config.arch, arch);
    EXPECT_EQ((*g)->config.head_dim, (*m)->config.head_dim);
    auto conv = Logits(**g, toks);
    for (size_t i = 0; i < r.size(); ++i) ASSERT_EQ(conv[i], engine[i]) << arch << " logit " << i;
  }
}

}  // namespace
}  // namespace edgeq
