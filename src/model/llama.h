// The Llama-family forward pass (llama, qwen2 = + q/k/v bias, qwen3 = + per-head q/k
// RMSNorm), built from the shared ops. One LlamaGraph per session: it owns that
// session's KV cache and activation arena, both allocated once in Create(); the
// weights belong to the (shared, read-only) Model.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "ops/kv_cache.h"

namespace edgeq {

RopeParams MakeRopeParams(const ModelConfig& c, const std::vector<float>& freq_factors);

// Sees the input of every matrix multiplication (calibration for quantization:
// activation statistics per input channel). Names: "attn_in" (q/k/v input),
// "attn_out" (wo input), "ffn_in" (gate/up input), "ffn_mid" (down input),
// "output_in" (classifier input; layer -1). x is [n_tok][dim].
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  virtual void Observe(int32_t layer, const char* name, const float* x, int32_t n_tok, int64_t dim) = 0;
};

// One token of a batch that may mix sequences (continuous batching): it is evaluated at
// position `pos` of sequence `seq`, attends to that sequence's cache entries 0..pos
// (earlier tokens of the same sequence in the same batch included), and its logits
// are written out when `logits` is set.
struct BatchToken {
  int32_t token = 0;
  int32_t seq = 0;
  int32_t pos = 0;
  bool logits = false;
};

// Where forward passes spend their time, step by step (edgeq bench --profile): the wall
// time of each step as the calling thread sees it (a parallel step ends when its last
// thread does), summed over layers and calls, and the weight bytes the matrix steps read.
struct ForwardProfile {
  enum Step {
    kEmbed,      // embedding rows, RoPE tables
    kAttnNorm,   // RMSNorm (+ activation quantization) before q/k/v
    kQkv,        // q/k/v matrix products
    kRopeKv,     // biases, QK-norm, RoPE, KV-cache store
    kAttention,  // scores, softmax, value sum (and a quantized cache's key-block writes, importance)
    kWo,         // output projection
    kFfnNorm,    // residual add, RMSNorm (+ quantization) before gate/up
    kGateUp,     // gate/up matrix products
    kSwiGlu,     // SwiGLU (+ quantization)
    kDown,       // down projection
    kResidual,   // residual add after the FFN
    kHead,       // final norm and classifier
    kSteps
  };
  static const char* Name(int step);
  double seconds[kSteps] = {};
  uint64_t weight_bytes[kSteps] = {};  // weights read by the matrix steps
  int64_t tokens = 0;                  // tokens forwarded
  double total_seconds = 0;            // whole forward passes
};

class LlamaGraph {
 public:
  // n_ctx: KV cache length per sequence (<= the model's context); max_batch: tokens per
  // forward chunk (longer prompts are processed in chunks of this size); n_seq:
  // independent sequences (KV caches) sharing the weights and the activation arena.
  // kv: the cache format (ops/kv_cache.h); fp32 (the default) is the exact path.
  static Result<std::unique_ptr<LlamaGraph>> Create(const Model& model, int32_t n_ctx,
                                                    int32_t max_batch, ThreadPool* pool, int32_t n_seq = 1,
                                                    const KvCacheOptions& kv = {});

  // Runs tokens[0..n) of sequence 0 at positions pos..pos+n-1 and appends them to its
  // KV cache. logits: if all_logits, [n][vocab]; else [vocab] for the last token.
  Status Forward(const int32_t* tokens, int32_t n, int32_t pos, bool all_logits, float* logits);

  // Runs up to max_batch() tokens of any sequences as one batch (each weight matrix is
  // read once for all of them). logits: [number of tokens with .logits set][vocab], in
  // batch order.
  Status ForwardBatch(const BatchToken* batch, int32_t n, float* logits);

  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_seq() const { return n_seq_; }
  int32_t max_batch() const { return max_batch_; }
  void set_observer(ActivationObserver* o) { observer_ = o; }
  // Accumulates step timings into *p while set (nullptr: off, no clock reads).
  void set_profile(ForwardProfile* p) { profile_ = p; }
  // Token-adaptive activation precision (Squat-style): after each attention, tokens
  // whose mean attention to the first token (the attention sink) is below the running
  // median of that layer use 4-bit activations in the layer's remaining matrix products
  // and the next layer's q/k/v. Only has an effect on integer-kernel weight formats.
  void set_adaptive_act_bits(bool on) { adaptive_ = on; }
  // RMSNorm -> quantize and SwiGLU -> quantize fused when the next matmul takes int8
  // activations (on by default; the results are identical either way).
  void set_fused_act_quant(bool on) { fuse_ = on; }
  // Fraction of token-matmul inputs that ran at 4 bits so far (for reports).
  double low_bit_fraction() const { return lowbit_total_ ? double(lowbit_count_) / lowbit_total_ : 0.0; }
  const Model& model() const { return model_; }
  uint64_t ArenaBytes() const { return arena_.size() * sizeof(float); }
  // Bytes of the KV cache (every sequence, metadata of the adaptive format included).
  uint64_t KvBytes() const { return kvq_ ? kvq_->Bytes() : kv_k_.size() * sizeof(float) * 2; }
  double KvBytesPerToken() const { return static_cast<double>(KvBytes()) / (static_cast<double>(n_ctx_) * n_seq_); }
  const KvCacheOptions& kv_options() const { return kv_opts_; }
  // Tokens stored at 2 / 4 / 8+ bits in the first len positions of seq, over all layers.
  void KvPrecisionCounts(int32_t seq, int32_t len, int64_t counts[3]) const;
  // Benchmarks: fills positions [0, n) of seq with deterministic pseudo-random keys and
  // values (no forward pass), so that decode can be timed at depth n.
  void FillKvForBench(int32_t seq, int32_t n);

 private:
  LlamaGraph(const Model& model, ThreadPool* pool) : model_(model), pool_(*pool) {}
  Status Validate(const BatchToken* batch, int32_t n) const;
  // batch_[0..n) holds the tokens.
  void ForwardChunk(int32_t n, float* logits);
  void Attention(int32_t layer, int32_t t0, int32_t t1);  // tokens [t0, t1) of the batch
  float* KCache(int32_t layer, int32_t seq);
  float* VCache(int32_t layer, int32_t seq);
  void UpdateLowBits(int32_t layer, int32_t n);
  void AttendQuantized(int32_t layer, int32_t t, int32_t kvh, int tid);
  template <typename F>
  void ForTokens(int32_t n, F&& fn);

  const Model& model_;
  ThreadPool& pool_;
  ActivationObserver* observer_ = nullptr;
  ForwardProfile* profile_ = nullptr;
  bool adaptive_ = false;
  bool fuse_ = true;
  std::vector<int32_t> att_tiles_;  // [B + 1] first token of each fp32 attention tile
  std::vector<float> sink_;        // [B][n_heads] attention prob on position 0
  std::vector<uint8_t> low_bits_;  // [B] 4-bit activation flag per token
  std::vector<double> sink_ema_;   // [n_layers] running median of sink attention
  int64_t lowbit_count_ = 0, lowbit_total_ = 0;
  int32_t n_ctx_ = 0;
  int32_t max_batch_ = 0;
  int32_t n_seq_ = 1;
  RopeParams rope_;
  std::vector<float> rope_cs_;     // [B][head_dim] each chunk token's RoPE cos/sin (RopeCosSin)
  std::vector<BatchToken> batch_;  // [max_batch] the chunk being evaluated
  std::vector<float> kv_k_;  // [n_layers][n_seq][n_ctx][kv_dim]
  std::vector<float> kv_v_;  // [n_layers][n_seq][n_ctx][kv_dim]
  KvCacheOptions kv_opts_;
  std::unique_ptr<KvCache> kvq_;  // every other KV format (kv_k_/kv_v_ stay empty)
  std::vector<float> arena_;  // all activations below point into it
  float* x_ = nullptr;        // [B][dim] residual stream
  float* xb_ = nullptr;       // [B][dim] normed input
  float* q_ = nullptr;        // [B][q_dim]
  float* k_ = nullptr;        // [B][kv_dim]
  float* v_ = nullptr;        // [B][kv_dim]
  float* attn_out_ = nullptr; // [B][q_dim]
  float* hb_ = nullptr;       // [B][hidden]
  float* hb2_ = nullptr;      // [B][hidden]
  float* att_ = nullptr;      // [threads][n_ctx] attention scores ([threads][group][n_ctx] when quantized)
  float* scratch_ = nullptr;  // [threads][max cols] dequantized weight rows
  std::vector<uint8_t> act_arena_;  // quantized activations for the integer kernels
  MatMulScratch mm_;
};

}  // namespace edgeq
