#include "model/model.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "core/large_alloc.h"
#include "core/memory_budget.h"
#include "format/gguf.h"
#include "format/tensor_types.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"

// Under AddressSanitizer each packed matrix is followed by a poisoned gap, so that a
// kernel reading past the end of its matrix is caught as it was when every matrix had its
// own allocation (the fuzz targets rely on it).
#if defined(__SANITIZE_ADDRESS__)
#define EDGEQ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGEQ_ASAN 1
#endif
#endif
#if defined(EDGEQ_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace edgeq {
namespace {
#if defined(EDGEQ_ASAN)
constexpr uint64_t kAsanGuard = 4096;
void PoisonForAsan(const void* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
#else
constexpr uint64_t kAsanGuard = 0;
void PoisonForAsan(const void*, size_t) {}
#endif

// EDGEQ_NO_REPACK=1 keeps every matrix in its stored rows.
bool RepackEnabled() {
  const char* off = std::getenv("EDGEQ_NO_REPACK");
  return off == nullptr || off[0] == 0 || off[0] == '0';
}

// Whether the kernels want a packed copy of t (integer formats with a packed layout).
bool HasPackedLayout(const Tensor2D& t) {
  return !t.empty() && IsEqType(t.type) && PackableEq(static_cast<EqType>(t.type));
}

// Bytes of t's packed copy in this CPU's kernel layout; 0 when it has none.
uint64_t PackedCopyBytes(const Tensor2D& t) {
  return HasPackedLayout(t) ? Kernels().packed_eq_bytes(static_cast<EqType>(t.type), t.rows, t.cols) : 0;
}

// The space a packed matrix of `bytes` takes in the repack buffer (RepackForKernels): its
// bytes, the ASan guard after it, rounded up to the next matrix's 4 KiB boundary.
constexpr uint64_t kPackedAlign = 4096;
uint64_t PackedSlotBytes(uint64_t bytes) {
  return bytes == 0 ? 0 : (bytes + kAsanGuard + kPackedAlign - 1) / kPackedAlign * kPackedAlign;
}
}  // namespace

Model::Model() = default;
Model::~Model() = default;

float* Model::Own(std::vector<float> v) {
  owned_f32.push_back(std::make_unique<std::vector<float>>(std::move(v)));
  return owned_f32.back()->data();
}

uint64_t MatMulReadBytes(const Tensor2D& t) {
  if (t.empty()) return 0;
  return t.packed != nullptr ? t.packed_bytes : t.row_bytes * t.rows;
}

uint64_t Model::WeightBytes() const {
  uint64_t total = 0;
  for (const auto& l : weights.layers) {
    for (const Tensor2D* t : l.Matrices()) total += MatMulReadBytes(*t);
  }
  total += MatMulReadBytes(weights.output);
  total += weights.token_embd.row_bytes;  // one embedding row per token
  return total;
}

static bool IsDirectory(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static Result<std::unique_ptr<Model>> LoadAnyFormat(const LoadOptions& opts);

Result<std::unique_ptr<Model>> LoadModel(const LoadOptions& opts) {
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, LoadAnyFormat(opts));
  // Parsing only mapped the file; nothing large is resident yet. Refuse a model that
  // cannot fit before the repack (and the first token) touch all of it.
  RETURN_IF_ERROR(CheckModelMemory(*m));
  RETURN_IF_ERROR(RepackForKernels(m.get()));
  return m;
}

ModelMemory EstimateModelMemory(const Model& m) {
  ModelMemory r;
  const bool repack = RepackEnabled();
  auto add = [&](const Tensor2D& t) {
    if (t.empty()) return;
    if (repack && HasPackedLayout(t)) {
      const uint64_t b = PackedSlotBytes(PackedCopyBytes(t));
      r.weight_bytes += b;
      r.repacked_bytes += b;
    } else {
      r.weight_bytes += t.row_bytes * static_cast<uint64_t>(t.rows);
    }
  };
  const ModelWeights& w = m.weights;
  // The embedding is always read in its stored rows; a tied head is the same memory
  // unless it gets its own packed copy.
  const Tensor2D& e = w.token_embd;
  if (!e.empty()) r.weight_bytes += e.row_bytes * static_cast<uint64_t>(e.rows);
  if (w.output.data != e.data || (repack && HasPackedLayout(w.output))) {
    add(w.output);
  }
  // Matrices through their Tensor2D (mapped or owned), fp32 vectors (norms, biases) by size.
  const ModelConfig& c = m.config;
  const uint64_t q_dim = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  uint64_t vec = w.output_norm != nullptr ? c.dim : 0;
  for (const LayerWeights& l : w.layers) {
    for (const Tensor2D* t : l.Matrices()) add(*t);
    vec += (l.attn_norm ? c.dim : 0) + (l.ffn_norm ? c.dim : 0) + (l.bq ? q_dim : 0) + (l.bk ? kv_dim : 0) +
           (l.bv ? kv_dim : 0) + (l.q_norm ? c.head_dim : 0) + (l.k_norm ? c.head_dim : 0);
  }
  r.weight_bytes += vec * sizeof(float);
  return r;
}

Status CheckModelMemory(const Model& m) {
  const ModelMemory mm = EstimateModelMemory(m);
  std::string detail = "weights in memory while it runs";
  if (mm.repacked_bytes > 0) detail += ", " + FormatBytes(mm.repacked_bytes) + " of them repacked for the kernels";
  return CheckMemoryFits(mm.weight_bytes, "model " + m.path, detail);
}

Status RepackForKernels(Model* m) {
  if (!RepackEnabled()) return Status::Ok();
  const KernelTable& k = Kernels();
  // Every packed matrix in one huge-page buffer, in the order decode reads them (layer by
  // layer q, k, v, o, gate, up, down, then the classifier), each on a 4 KiB boundary:
  // one buffer instead of one per matrix leaves no partly used 2 MiB page per matrix
  // (tinyllama w4a8-g128: 111 MB less peak RSS), puts the small ones (k, v) on huge pages,
  // and lets the prefetch that runs past the end of one op fetch the start of the next.
  std::vector<Tensor2D*> order;
  for (LayerWeights& l : m->weights.layers) {
    for (Tensor2D* t : l.Matrices()) order.push_back(t);
  }
  order.push_back(&m->weights.output);  // a tied head gets its own packed copy too
  // Matrix i's copy is bytes[i] at offset[i]; offset[i + 1] - offset[i] - bytes[i] is the
  // padding (and guard) after it.
  std::vector<uint64_t> offset(order.size() + 1, 0), bytes(order.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) {
    bytes[i] = PackedCopyBytes(*order[i]);
    offset[i + 1] = offset[i] + PackedSlotBytes(bytes[i]);
  }
  const uint64_t total = offset.back();
  if (total == 0) return Status::Ok();
  std::shared_ptr<void> buf = AllocateLarge(total);  // huge pages: decode streams through it
  if (buf == nullptr) {
    return ResourceExhausted("cannot allocate " + std::to_string(total >> 20) + " MiB to repack the weights");
  }
  uint8_t* base = static_cast<uint8_t*>(buf.get());
  for (size_t i = 0; i < order.size(); ++i) {
    if (bytes[i] == 0) continue;
    Tensor2D* t = order[i];
    k.pack_eq(static_cast<EqType>(t->type), static_cast<const uint8_t*>(t->data), t->row_bytes, t->rows, t->cols,
              base + offset[i]);
    t->packed = base + offset[i];
    t->packed_bytes = bytes[i];
    PoisonForAsan(base + offset[i] + bytes[i], offset[i + 1] - offset[i] - bytes[i]);
    // The row layout stays mapped (convert, quantize and embeddings read it) but need not
    // stay resident: the kernels read the packed copy. Not for the token embedding's rows.
    if (m->gguf && t->data != m->weights.token_embd.data) m->gguf->ReleasePages(t->data, t->row_bytes * t->rows);
  }
  m->keep_alive.push_back(std::move(buf));
  return Status::Ok();
}

static Result<std::unique_ptr<Model>> LoadAnyFormat(const LoadOptions& opts) {
  const std::string& p = opts.model_path;
  if (p.empty()) return InvalidArgument("no model path given");
  if (IsDirectory(p)) return LoadHfModel(p);
  ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(p));
  const bool gguf_name = p.size() >= 5 && p.compare(p.size() - 5, 5, ".gguf") == 0;
  if (gguf_name || (f.size() >= 4 && std::memcmp(f.data(), "GGUF", 4) == 0)) return LoadGgufModel(p);
  uint32_t magic = 0;
  if (f.size() >= 4) std::memcpy(&magic, f.data(), 4);
  if (magic == 0x616b3432u || f.size() >= 28) {
    return LoadLlama2cModel(p, opts.tokenizer_path);
  }
  return DataLoss(p + ": unrecognized model file (not GGUF, not a llama2.c checkpoint, "
                      "not a Hugging Face directory); size " + std::to_string(f.size()) + " bytes");
}

static Status CheckTensor(const Tensor2D& t, int64_t rows, int64_t cols, const std::string& name) {
  if (t.empty()) return DataLoss("missing tensor " + name);
  if (t.rows != rows || t.cols != cols) {
    return DataLoss("tensor " + name + " has shape [" + std::to_string(t.rows) + ", " +
                    std::to_string(t.cols) + "], expected [" + std::to_string(rows) + ", " +
                    std::to_string(cols) + "]");
  }
  return Status::Ok();
}

Status ValidateModel(const Model& m) {
  const ModelConfig& c = m.config;
  auto positive = [](int64_t v) { return v > 0 && v < (int64_t{1} << 24); };
  if (!positive(c.dim) || !positive(c.hidden_dim) || !positive(c.n_layers) || c.n_layers > 4096 ||
      !positive(c.n_heads) || !positive(c.n_kv_heads) || !positive(c.vocab_size) ||
      !positive(c.head_dim) || !positive(c.context_length)) {
    return DataLoss("implausible hyperparameters: dim " + std::to_string(c.dim) + ", hidden " +
                    std::to_string(c.hidden_dim) + ", layers " + std::to_string(c.n_layers) +
                    ", heads " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) +
                    ", head_dim " + std::to_string(c.head_dim) + ", vocab " +
                    std::to_string(c.vocab_size) + ", context " + std::to_string(c.context_length));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return DataLoss("n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
                    std::to_string(c.n_kv_heads));
  }
  if (c.head_dim % 2 != 0) return DataLoss("head_dim " + std::to_string(c.head_dim) + " is odd");
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) return DataLoss("rms_eps out of range");
  if (!(c.rope_theta > 0)) return DataLoss("rope_theta must be positive");
  const ModelWeights& w = m.weights;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  RETURN_IF_ERROR(CheckTensor(w.token_embd, c.vocab_size, c.dim, "token_embd"));
  RETURN_IF_ERROR(CheckTensor(w.output, c.vocab_size, c.dim, "output"));
  if (w.output_norm == nullptr) return DataLoss("missing tensor output_norm");
  if (static_cast<int32_t>(w.layers.size()) != c.n_layers) return DataLoss("layer count mismatch");
  for (int32_t i = 0; i < c.n_layers; ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    if (l.attn_norm == nullptr) return DataLoss("missing tensor " + p + "attn_norm");
    if (l.ffn_norm == nullptr) return DataLoss("missing tensor " + p + "ffn_norm");
    RETURN_IF_ERROR(CheckTensor(l.wq, q_dim, c.dim, p + "attn_q"));
    RETURN_IF_ERROR(CheckTensor(l.wk, kv_dim, c.dim, p + "attn_k"));
    RETURN_IF_ERROR(CheckTensor(l.wv, kv_dim, c.dim, p + "attn_v"));
    RETURN_IF_ERROR(CheckTensor(l.wo, c.dim, q_dim, p + "attn_output"));
    RETURN_IF_ERROR(CheckTensor(l.w_gate, c.hidden_dim, c.dim, p + "ffn_gate"));
    RETURN_IF_ERROR(CheckTensor(l.w_up, c.hidden_dim, c.dim, p + "ffn_up"));
    RETURN_IF_ERROR(CheckTensor(l.w_down, c.dim, c.hidden_dim, p + "ffn_down"));
    if (c.qkv_bias && (l.bq == nullptr || l.bk == nullptr || l.bv == nullptr)) {
      return DataLoss("missing q/k/v bias in " + p);
    }
    if (c.qk_norm && (l.q_norm == nullptr || l.k_norm == nullptr)) {
      return DataLoss("missing q/k norm in " + p);
    }
  }
  return Status::Ok();
}

}  // namespace edgeq
