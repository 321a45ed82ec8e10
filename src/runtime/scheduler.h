// Continuous batching over one model: N slots (one KV sequence each) share the
// weights and one LlamaGraph; every Step() runs a single forward batch holding the
// next token of every decoding slot plus a bounded chunk of waiting prompts, so a
// long prompt never stalls the streams already running. Single-threaded by design:
// the server's executor thread owns the Scheduler and is the only caller (all locking
// lives in server/queue). Sinks are called from that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace edgeq {

struct TaskParams {
  std::vector<int32_t> prompt;       // full prompt, BOS included when the model wants it
  int32_t max_tokens = -1;           // -1: until end of generation or the context is full
  SamplerParams sampler;
  std::vector<std::string> stop;     // stop strings (not included in the output)
  int32_t n_logprobs = -1;           // -1: off; 0..20: logprob of the chosen token + that many alternatives
  bool ignore_eos = false;
};

struct TokenOut {
  int32_t id = -1;   // -1: text flushed at the end (no token)
  std::string text;  // complete UTF-8 released by this token (held back while it may start a stop string)
  float logprob = 0;                             // when n_logprobs >= 0
  std::vector<std::pair<int32_t, float>> top;    // n_logprobs alternatives, most likely first
};

enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "cancelled", "error"

// Receives one task's results (called on the scheduler's thread).
class TaskSink {
 public:
  virtual ~TaskSink() = default;
  virtual void OnPromptDone(int32_t n_prompt) {}
  virtual void OnToken(const TokenOut& t) = 0;
  virtual void OnFinish(FinishReason reason, const std::string& detail, int32_t n_prompt, int32_t n_generated) = 0;
  virtual bool Cancelled() const = 0;  // polled once per step
};

class Scheduler {
 public:
  struct Options {
    int32_t n_slots = 4;
    int32_t n_ctx = 0;          // per slot; 0: the model's context
    int32_t max_batch = 64;     // tokens per forward step
    int32_t prefill_chunk = 32; // prompt tokens per step while other slots are decoding
    int32_t n_threads = 0;      // 0: all hardware threads
    KvCacheOptions kv;          // KV-cache format of every slot
  };
  static Result<std::unique_ptr<Scheduler>> Create(const Model& model, const Tokenizer& tok, const Options& opts);

  bool HasFreeSlot() const;
  // Starts a task in a free slot. Errors: no free slot, empty prompt, prompt or
  // prompt + max_tokens beyond the context.
  Status Admit(TaskParams task, std::shared_ptr<TaskSink> sink);
  // One forward step over all active slots. Returns false when there was nothing to do.
  bool Step();
  // Ends every running task as cancelled (shutdown).
  void CancelAll();

  int32_t n_slots() const { return static_cast<int32_t>(slots_.size()); }
  int32_t n_ctx() const { return graph_->n_ctx(); }
  // Slots in use; safe to read from any thread, and already decremented when a sink's
  // OnFinish runs (a client that got its answer never sees its slot still busy).
  int32_t active() const { return n_active_.load(); }
  int64_t kv_tokens_used() const;  // tokens held in all slots' caches
  uint64_t kv_bytes() const { return graph_->KvBytes(); }

 private:
  struct Slot {
    bool active = false;
    TaskParams task;
    std::shared_ptr<TaskSink> sink;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<StreamDecoder> decoder;
    std::unique_ptr<StopMatcher> stop;
    std::vector<int32_t> tokens;  // prompt + generated, in cache order
    int32_t n_past = 0;           // tokens already in the KV cache
    int32_t n_generated = 0;
    int32_t pending = -1;         // sampled token still to be fed (decode phase)
    std::vector<float> raw;       // logits before sampling (only with logprobs)
  };
  Scheduler(const Model& model, const Tokenizer& tok) : model_(model), tok_(tok) {}
  void Finish(Slot& s, FinishReason r, const std::string& detail);
  void Sample(Slot& s, float* logits);

  const Model& model_;
  const Tokenizer& tok_;
  Options opts_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<LlamaGraph> graph_;
  std::vector<Slot> slots_;
  std::vector<BatchToken> batch_;
  std::vector<int32_t> batch_slot_;  // slot of each logits row
  std::vector<float> logits_;        // [max_batch][vocab]
  size_t rr_ = 0;                    // round-robin start for prefill
  bool llama2c_ = false;
  std::atomic<int32_t> n_active_{0};
};

}  // namespace edgeq
