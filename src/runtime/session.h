// A session: one conversation's state (KV cache, activations, sampler) over a shared
// Model. Generate() runs prefill of the whole prompt (matrix-matrix, in chunks) and
// then decode (matrix-vector) token by token, streaming text through a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace edgeq {

struct SessionOptions {
  int32_t n_ctx = 0;      // 0: the model's context length
  int32_t n_threads = 0;  // 0: all hardware threads
  int32_t batch = 64;     // prefill chunk
  bool adaptive_act_bits = false;  // token-adaptive 4/8-bit activations (LlamaGraph)
  KvCacheOptions kv;               // KV-cache format (fp32 by default)
  // When generation fills the context before n_predict tokens: false stops with an error
  // (with n_predict -1 it just stops, reason "context"); true keeps the first
  // kv.sinks tokens and the newer half of the rest, re-evaluates them at their new
  // positions and goes on (context shift).
  bool ctx_shift = false;
};

struct GenerateOptions {
  int32_t n_predict = -1;  // -1: until EOS or the context is full
  SamplerParams sampler;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool ignore_eos = false;
  // Tokens generated (in order), when non-null; lets a chat keep its transcript.
  std::vector<int32_t>* out_tokens = nullptr;
};

struct GenerateStats {
  int32_t n_prompt = 0;
  int32_t n_generated = 0;
  double prompt_ms = 0;
  double gen_ms = 0;
  // "eos", "length", "stop", "context" (-1 tokens asked: the context filled), "cancelled";
  // an explicit n_predict that does not fit is an error unless ctx_shift.
  std::string stop_reason;
  int32_t n_shifts = 0;     // context shifts (SessionOptions::ctx_shift)
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> Create(const Model& model, const Tokenizer& tok,
                                                 const SessionOptions& opts);

  // on_text receives decoded text as it becomes complete UTF-8; return false to stop.
  Status Generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                  const std::function<bool(const std::string&)>& on_text, GenerateStats* stats);

  // Evaluates tokens at the current position; logits of the last (or all) tokens.
  Status Eval(const int32_t* tokens, int32_t n, bool all_logits, float* logits);
  Status Eval(const std::vector<int32_t>& tokens, bool all_logits, float* logits) {
    return Eval(tokens.data(), static_cast<int32_t>(tokens.size()), all_logits, logits);
  }
  void Reset() { pos_ = 0; history_.clear(); }
  // Forgets everything after the first n tokens (their KV entries are overwritten later).
  void Rewind(int32_t n) {
    if (n < pos_) {
      pos_ = n;
      history_.resize(n);
    }
  }
  int32_t pos() const { return pos_; }
  int32_t n_ctx() const { return graph_->n_ctx(); }
  LlamaGraph& graph() { return *graph_; }
  ThreadPool& pool() { return *pool_; }
  const std::vector<int32_t>& history() const { return history_; }

 private:
  Session(const Model& model, const Tokenizer& tok) : model_(model), tok_(tok) {}
  Status ShiftContext();
  const Model& model_;
  const Tokenizer& tok_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<LlamaGraph> graph_;
  std::vector<float> logits_;      // [vocab]
  std::vector<int32_t> history_;   // every token in the KV cache, in order
  int32_t pos_ = 0;
  SessionOptions opts_;
};

// Holds back text that could still become a stop string; Push returns what is safe
// to emit and sets *stopped when a stop string completed.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string Push(const std::string& text, bool* stopped);
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace edgeq
