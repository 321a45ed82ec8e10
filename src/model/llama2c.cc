// llama2.c checkpoints: legacy (v0: 7 x int32 header, negative vocab = untied
// classifier), version 1 (fp32, 256-byte header) and version 2 (int8 groups, 256-byte
// header). v0/v1 weights are fp32 in file order and are used in place from the map;
// v2 is dequantized to fp32 at load (its groups may straddle rows).
#include <cstring>

#include "core/byte_reader.h"
#include "model/model.h"

namespace edgeq {
namespace {

constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42"

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

Tensor2D F32Matrix(const float* p, int64_t rows, int64_t cols) {
  Tensor2D t;
  t.type = GgmlType::kF32;
  t.data = p;
  t.rows = rows;
  t.cols = cols;
  t.row_bytes = static_cast<uint64_t>(cols) * 4;
  return t;
}

}  // namespace

Result<std::unique_ptr<Model>> LoadLlama2cModel(const std::string& path,
                                                const std::string& tokenizer_path) {
  auto file = std::make_shared<MappedFile>();
  {
    ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
    *file = std::move(f);
  }
  ByteReader r(file->data(), file->size(), path);
  auto model = std::make_unique<Model>();
  model->path = path;
  model->keep_alive.push_back(file);

  uint32_t magic = 0;
  RETURN_IF_ERROR(r.Read(&magic, "magic"));
  int version = 0;
  Header h{};
  bool shared = false;
  int32_t group_size = 0;
  if (magic == kLlama2cMagic) {
    int32_t v = 0;
    RETURN_IF_ERROR(r.Read(&v, "version"));
    if (v != 1 && v != 2) {
      return Unimplemented(path + ": llama2.c checkpoint version " + std::to_string(v) +
                           " is not supported (versions 0, 1 and 2 are)");
    }
    version = v;
    RETURN_IF_ERROR(r.Read(&h, "header"));
    uint8_t flag = 0;
    RETURN_IF_ERROR(r.Read(&flag, "shared_classifier flag"));
    shared = flag != 0;
    if (version == 2) RETURN_IF_ERROR(r.Read(&group_size, "group_size"));
    RETURN_IF_ERROR(r.Seek(256, "weights"));
  } else {
    RETURN_IF_ERROR(r.Seek(0, "header"));
    RETURN_IF_ERROR(r.Read(&h, "header"));
    shared = h.vocab_size > 0;
    // INT32_MIN has no positive counterpart: leave it negative for the range check below.
    if (h.vocab_size < 0 && h.vocab_size != INT32_MIN) h.vocab_size = -h.vocab_size;
  }
  model->format = "llama2c-v" + std::to_string(version);

  auto bad = [&](const std::string& what) {
    return DataLoss(path + ": implausible llama2.c header (" + what + "): dim " +
                    std::to_string(h.dim) + ", hidden " + std::to_string(h.hidden_dim) +
                    ", layers " + std::to_string(h.n_layers) + ", heads " +
                    std::to_string(h.n_heads) + "/" + std::to_string(h.n_kv_heads) + ", vocab " +
                    std::to_string(h.vocab_size) + ", seq_len " + std::to_string(h.seq_len));
  };
  constexpr int32_t kMax = 1 << 20;
  if (h.dim <= 0 || h.dim > kMax) return bad("dim");
  if (h.hidden_dim <= 0 || h.hidden_dim > kMax) return bad("hidden_dim");
  if (h.n_layers <= 0 || h.n_layers > 1024) return bad("n_layers");
  if (h.n_heads <= 0 || h.n_heads > h.dim || h.dim % h.n_heads != 0) return bad("n_heads");
  if (h.n_kv_heads <= 0 || h.n_kv_heads > h.n_heads || h.n_heads % h.n_kv_heads != 0)
    return bad("n_kv_heads");
  if (h.vocab_size <= 0 || h.vocab_size > (1 << 22)) return bad("vocab_size");
  if (h.seq_len <= 0 || h.seq_len > (1 << 24)) return bad("seq_len");
  if ((h.dim / h.n_heads) % 2 != 0) return bad("odd head size");
  if (version == 2 && (group_size <= 0 || group_size > h.dim || h.dim % group_size != 0))
    return DataLoss(path + ": llama2.c v2 group_size " + std::to_string(group_size) + " is invalid");

  ModelConfig& c = model->config;
  c.arch = "llama";
  c.name = path;
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size;
  c.context_length = h.seq_len;
  c.rms_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_type = RopeType::kNormal;
  c.tied_embeddings = shared;

  const int64_t L = h.n_layers, D = h.dim, H = h.hidden_dim, V = h.vocab_size;
  const int64_t hs = D / h.n_heads;
  const int64_t kv_dim = static_cast<int64_t>(h.n_kv_heads) * hs;

  // Expected byte count, checked before any pointer is formed.
  uint64_t n_matrix = V * D + L * (D * D + 2 * D * kv_dim + D * D + 3 * D * H);
  if (!shared) n_matrix += V * D;
  const uint64_t n_norm = L * D * 2 + D;
  uint64_t need = 0;
  if (version == 2) {
    need = n_norm * 4 + n_matrix + (n_matrix / group_size) * 4;
  } else {
    need = (n_norm + n_matrix) * 4;
    if (version == 0) need += static_cast<uint64_t>(h.seq_len) * hs * 4;  // freq_cis_real/imag
  }
  if (r.remaining() < need) {
    return DataLoss(path + ": truncated llama2.c checkpoint: header promises " +
                    std::to_string(need) + " bytes of weights after offset " +
                    std::to_string(r.offset()) + ", file has " + std::to_string(r.remaining()));
  }
  const float* base = reinterpret_cast<const float*>(r.cursor());
  if (reinterpret_cast<uintptr_t>(base) % 4 != 0) return Internal("unaligned weights");

  ModelWeights& w = model->weights;
  w.layers.resize(L);
  const float* p = base;
  auto take = [&](int64_t n) {
    const float* q = p;
    p += n;
    return q;
  };
  if (version == 0) {
    w.token_embd = F32Matrix(take(V * D), V, D);
    for (auto& l : w.layers) l.attn_norm = take(D);
    for (auto& l : w.layers) l.wq = F32Matrix(take(D * D), D, D);
    for (auto& l : w.layers) l.wk = F32Matrix(take(kv_dim * D), kv_dim, D);
    for (auto& l : w.layers) l.wv = F32Matrix(take(kv_dim * D), kv_dim, D);
    for (auto& l : w.layers) l.wo = F32Matrix(take(D * D), D, D);
    for (auto& l : w.layers) l.ffn_norm = take(D);
    for (auto& l : w.layers) l.w_gate = F32Matrix(take(H * D), H, D);
    for (auto& l : w.layers) l.w_down = F32Matrix(take(D * H), D, H);
    for (auto& l : w.layers) l.w_up = F32Matrix(take(H * D), H, D);
    w.output_norm = take(D);
    take(static_cast<int64_t>(h.seq_len) * hs);  // freq_cis (recomputed at run time)
    w.output = shared ? w.token_embd : F32Matrix(take(V * D), V, D);
  } else if (version == 1) {
    for (auto& l : w.layers) l.attn_norm = take(D);
    for (auto& l : w.layers) l.ffn_norm = take(D);
    w.output_norm = take(D);
    w.token_embd = F32Matrix(take(V * D), V, D);
    for (auto& l : w.layers) l.wq = F32Matrix(take(D * D), D, D);
    for (auto& l : w.layers) l.wk = F32Matrix(take(kv_dim * D), kv_dim, D);
    for (auto& l : w.layers) l.wv = F32Matrix(take(kv_dim * D), kv_dim, D);
    for (auto& l : w.layers) l.wo = F32Matrix(take(D * D), D, D);
    for (auto& l : w.layers) l.w_gate = F32Matrix(take(H * D), H, D);
    for (auto& l : w.layers) l.w_down = F32Matrix(take(D * H), D, H);
    for (auto& l : w.layers) l.w_up = F32Matrix(take(H * D), H, D);
    w.output = shared ? w.token_embd : F32Matrix(take(V * D), V, D);
  } else {
    for (auto& l : w.layers) l.attn_norm = take(D);
    for (auto& l : w.layers) l.ffn_norm = take(D);
    w.output_norm = take(D);
    // int8 data for every matrix in order, then all fp32 group scales in order.
    const int8_t* q = reinterpret_cast<const int8_t*>(p);
    const float* scales = reinterpret_cast<const float*>(q + n_matrix);
    if (reinterpret_cast<uintptr_t>(scales) % 4 != 0) {
      // Scales are not 4-byte aligned in the map when n_matrix % 4 != 0: copy them.
      std::vector<float> s(n_matrix / group_size);
      std::memcpy(s.data(), q + n_matrix, s.size() * 4);
      scales = model->Own(std::move(s));
    }
    auto deq = [&](int64_t rows, int64_t cols) {
      std::vector<float> out(static_cast<size_t>(rows * cols));
      for (int64_t i = 0; i < rows * cols; ++i) out[i] = q[i] * scales[i / group_size];
      q += rows * cols;
      scales += rows * cols / group_size;
      return F32Matrix(model->Own(std::move(out)), rows, cols);
    };
    w.token_embd = deq(V, D);
    for (auto& l : w.layers) l.wq = deq(D, D);
    for (auto& l : w.layers) l.wk = deq(kv_dim, D);
    for (auto& l : w.layers) l.wv = deq(kv_dim, D);
    for (auto& l : w.layers) l.wo = deq(D, D);
    for (auto& l : w.layers) l.w_gate = deq(H, D);
    for (auto& l : w.layers) l.w_down = deq(D, H);
    for (auto& l : w.layers) l.w_up = deq(H, D);
    w.output = shared ? w.token_embd : deq(V, D);
  }

  if (tokenizer_path.empty()) {
    return InvalidArgument(path + ": a llama2.c checkpoint has no vocabulary: pass its "
                                  "tokenizer.bin with -z");
  }
  ASSIGN_OR_RETURN(model->tokenizer_data, TokenizerDataFromLlama2c(tokenizer_path, h.vocab_size));
  RETURN_IF_ERROR(ValidateModel(*model).WithContext(path));
  return model;
}

}  // namespace edgeq
