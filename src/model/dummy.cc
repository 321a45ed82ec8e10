#include "model/dummy.h"

#include <cstring>

#include "core/fp16.h"
#include "core/thread_pool.h"

namespace edgeq {
namespace {

struct Shape {
  const char* name;
  int32_t dim, hidden, layers, heads, kv_heads, vocab, ctx;
  float theta;
  bool tied, qkv_bias;
  const char* arch;
};

// Shapes from the models' published configs, and one tiny shape (not a real model) whose
// quantized files are small fuzzing seeds (fuzz/corpus/eq_model): rows of 32 and 86
// (a partial group), GQA, two layers.
constexpr Shape kShapes[] = {
    {"tiny", 32, 86, 2, 4, 2, 64, 64, 10000.f, true, false, "llama"},
    {"stories260k", 64, 172, 5, 8, 4, 512, 512, 10000.f, true, false, "llama"},
    {"stories15m", 288, 768, 6, 6, 6, 32000, 256, 10000.f, true, false, "llama"},
    {"stories110m", 768, 2048, 12, 12, 12, 32000, 1024, 10000.f, true, false, "llama"},
    {"smollm2-135m", 576, 1536, 30, 9, 3, 49152, 8192, 100000.f, true, false, "llama"},
    {"qwen2.5-0.5b", 896, 4864, 24, 14, 2, 151936, 32768, 1000000.f, true, true, "qwen2"},
    {"tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.f, false, false, "llama"},
    {"llama3.2-1b", 2048, 8192, 16, 32, 8, 128256, 131072, 500000.f, true, false, "llama"},
};

const Shape* FindShape(const std::string& name) {
  for (const Shape& s : kShapes) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// splitmix64: fast, seedable, good enough for random weights.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<std::string> DummyShapeNames() {
  std::vector<std::string> v;
  for (const Shape& s : kShapes) v.emplace_back(s.name);
  return v;
}

Result<ModelConfig> DummyShapeConfig(const std::string& name) {
  const Shape* s = FindShape(name);
  if (s == nullptr) {
    std::string all;
    for (const auto& n : DummyShapeNames()) all += (all.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown dummy shape '" + name + "' (known: " + all + ")");
  }
  ModelConfig c;
  c.arch = s->arch;
  c.name = std::string(s->name) + " (random weights)";
  c.dim = s->dim;
  c.hidden_dim = s->hidden;
  c.n_layers = s->layers;
  c.n_heads = s->heads;
  c.n_kv_heads = s->kv_heads;
  c.head_dim = s->dim / s->heads;
  c.vocab_size = s->vocab;
  c.context_length = s->ctx;
  c.rope_theta = s->theta;
  c.rope_type = c.arch == "llama" ? RopeType::kNormal : RopeType::kNeox;
  c.tied_embeddings = s->tied;
  c.qkv_bias = s->qkv_bias;
  c.rms_eps = 1e-5f;
  if (name == "llama3.2-1b") {
    c.rope_scaling.factor = 32.0f;
    c.rope_scaling.low_freq_factor = 1.0f;
    c.rope_scaling.high_freq_factor = 4.0f;
    c.rope_scaling.original_context = 8192;
  }
  return c;
}

Result<std::unique_ptr<Model>> MakeDummyModel(const std::string& shape, GgmlType type, uint64_t seed) {
  if (type != GgmlType::kF32 && type != GgmlType::kF16) return InvalidArgument("dummy weights are F32 or F16");
  ASSIGN_OR_RETURN(ModelConfig c, DummyShapeConfig(shape));
  auto m = std::make_unique<Model>();
  m->config = c;
  m->path = "dummy:" + shape;
  m->format = "dummy";
  const size_t esize = type == GgmlType::kF32 ? 4 : 2;
  ThreadPool pool(2);
  uint64_t tensor_id = 0;
  auto matrix = [&](int64_t rows, int64_t cols) {
    const uint64_t id = ++tensor_id;
    auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[static_cast<size_t>(rows * cols) * esize]);
    uint8_t* base = buf.get();
    // Uniform in [-a, a] with a = 0.02 * sqrt(3): std 0.02.
    const float a = 0.0346f;
    pool.ParallelFor(rows, 64, [&](int, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t i = 0; i < cols; ++i) {
          const uint64_t x = Mix(seed ^ (id << 40) ^ static_cast<uint64_t>(r * cols + i));
          const float v = (static_cast<float>(x >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
          if (esize == 4) std::memcpy(base + (r * cols + i) * 4, &v, 4);
          else {
            const uint16_t h = Fp32ToFp16(v);
            std::memcpy(base + (r * cols + i) * 2, &h, 2);
          }
        }
      }
    });
    m->keep_alive.push_back(std::shared_ptr<const void>(buf, buf.get()));
    Tensor2D t;
    t.type = type;
    t.data = base;
    t.rows = rows;
    t.cols = cols;
    t.row_bytes = static_cast<uint64_t>(cols) * esize;
    return t;
  };
  auto ones = [&](int64_t n) { return m->Own(std::vector<float>(static_cast<size_t>(n), 1.0f)); };
  auto small = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<float>(Mix(seed + i) >> 40) / 16777216.0f - 0.5f) * 0.1f;
    return m->Own(std::move(v));
  };
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  ModelWeights& w = m->weights;
  w.token_embd = matrix(c.vocab_size, c.dim);
  w.output_norm = ones(c.dim);
  w.output = c.tied_embeddings ? w.token_embd : matrix(c.vocab_size, c.dim);
  w.layers.resize(c.n_layers);
  for (auto& l : w.layers) {
    l.attn_norm = ones(c.dim);
    l.ffn_norm = ones(c.dim);
    l.wq = matrix(q_dim, c.dim);
    l.wk = matrix(kv_dim, c.dim);
    l.wv = matrix(kv_dim, c.dim);
    l.wo = matrix(c.dim, q_dim);
    if (c.qkv_bias) {
      l.bq = small(q_dim);
      l.bk = small(kv_dim);
      l.bv = small(kv_dim);
    }
    l.w_gate = matrix(c.hidden_dim, c.dim);
    l.w_up = matrix(c.hidden_dim, c.dim);
    l.w_down = matrix(c.dim, c.hidden_dim);
  }
  // Synthetic SentencePiece-style vocabulary.
  TokenizerData& td = m->tokenizer_data;
  td.model = "llama";
  td.tokens.reserve(c.vocab_size);
  td.tokens = {"<unk>", "<s>", "</s>"};
  td.token_types = {2, 3, 3};
  char piece[16];
  for (int b = 0; b < 256 && static_cast<int32_t>(td.tokens.size()) < c.vocab_size; ++b) {
    std::snprintf(piece, sizeof piece, "<0x%02X>", b);
    td.tokens.emplace_back(piece);
    td.token_types.push_back(6);
  }
  while (static_cast<int32_t>(td.tokens.size()) < c.vocab_size) {
    td.tokens.push_back("tok" + std::to_string(td.tokens.size()));
    td.token_types.push_back(1);
  }
  td.scores.assign(td.tokens.size(), 0.0f);
  for (size_t i = 0; i < td.scores.size(); ++i) td.scores[i] = -static_cast<float>(i);
  td.unk_id = 0;
  td.bos_id = 1;
  td.eos_id = 2;
  td.add_bos = true;
  RETURN_IF_ERROR(ValidateModel(*m));
  return m;
}

}  // namespace edgeq
