#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace edgeq {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "error";
}

Result<std::unique_ptr<Scheduler>> Scheduler::Create(const Model& model, const Tokenizer& tok, const Options& opts) {
  if (opts.n_slots < 1 || opts.n_slots > 256) return InvalidArgument("parallel slots must be in 1..256");
  if (opts.max_batch < opts.n_slots) {
    return InvalidArgument("batch size " + std::to_string(opts.max_batch) + " must be at least the number of slots (" +
                           std::to_string(opts.n_slots) + ")");
  }
  if (opts.prefill_chunk < 1) return InvalidArgument("prefill chunk must be positive");
  const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : model.config.context_length;
  if (n_ctx > model.config.context_length) {
    return InvalidArgument("context size " + std::to_string(n_ctx) + " exceeds the model's training context " +
                           std::to_string(model.config.context_length));
  }
  std::unique_ptr<Scheduler> s(new Scheduler(model, tok));
  s->opts_ = opts;
  const int32_t threads = opts.n_threads > 0 ? opts.n_threads
                                             : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  s->pool_ = std::make_unique<ThreadPool>(threads);
  ASSIGN_OR_RETURN(s->graph_, LlamaGraph::Create(model, n_ctx, opts.max_batch, s->pool_.get(), opts.n_slots, opts.kv));
  s->slots_.resize(opts.n_slots);
  for (Slot& sl : s->slots_) sl.tokens.reserve(n_ctx);
  s->batch_.reserve(opts.max_batch);
  s->batch_slot_.reserve(opts.max_batch);
  s->logits_.resize(static_cast<size_t>(opts.max_batch) * model.config.vocab_size);
  s->llama2c_ = model.format.rfind("llama2c", 0) == 0;
  return s;
}

bool Scheduler::HasFreeSlot() const {
  for (const Slot& s : slots_) {
    if (!s.active) return true;
  }
  return false;
}

int64_t Scheduler::kv_tokens_used() const {
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.active ? s.n_past : 0;
  return n;
}

Status Scheduler::Admit(TaskParams task, std::shared_ptr<TaskSink> sink) {
  if (task.prompt.empty()) return InvalidArgument("empty prompt");
  const int64_t need = static_cast<int64_t>(task.prompt.size()) + std::max(task.max_tokens, 0);
  if (static_cast<int64_t>(task.prompt.size()) >= n_ctx() || need > n_ctx()) {
    return OutOfRange("the prompt (" + std::to_string(task.prompt.size()) + " tokens) plus max_tokens (" +
                      std::to_string(std::max(task.max_tokens, 0)) + ") exceeds the context size of " +
                      std::to_string(n_ctx()) + " tokens");
  }
  for (int32_t t : task.prompt) {
    if (t < 0 || t >= model_.config.vocab_size) {
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary (size " +
                             std::to_string(model_.config.vocab_size) + ")");
    }
  }
  for (Slot& s : slots_) {
    if (s.active) continue;
    s.active = true;
    ++n_active_;
    s.sampler = std::make_unique<Sampler>(task.sampler, model_.config.vocab_size);
    s.decoder = std::make_unique<StreamDecoder>(tok_);
    s.decoder->Push(task.prompt.back());  // primes "previous token"; the prompt is not echoed
    (void)s.decoder->Flush();
    s.stop = std::make_unique<StopMatcher>(task.stop);
    s.tokens.assign(task.prompt.begin(), task.prompt.end());
    s.n_past = 0;
    s.n_generated = 0;
    s.pending = -1;
    if (task.n_logprobs >= 0) s.raw.resize(model_.config.vocab_size);
    s.task = std::move(task);
    s.sink = std::move(sink);
    return Status::Ok();
  }
  return ResourceExhausted("no free slot");
}

void Scheduler::Finish(Slot& s, FinishReason r, const std::string& detail) {
  if (r == FinishReason::kStop || r == FinishReason::kLength) {
    bool stopped = false;
    TokenOut tail;
    tail.text = s.stop->Push(s.decoder->Flush(), &stopped);
    if (!stopped) tail.text += s.stop->Flush();
    if (!tail.text.empty()) s.sink->OnToken(tail);
  }
  std::shared_ptr<TaskSink> sink = std::move(s.sink);
  s.active = false;
  --n_active_;
  sink->OnFinish(r, detail, static_cast<int32_t>(s.task.prompt.size()), s.n_generated);
  s.task = TaskParams{};
}

void Scheduler::Sample(Slot& s, float* logits) {
  const int32_t vocab = model_.config.vocab_size;
  TokenOut out;
  if (s.task.n_logprobs >= 0) std::copy(logits, logits + vocab, s.raw.begin());
  const int32_t next = s.sampler->Sample(logits, s.tokens.data(), static_cast<int64_t>(s.tokens.size()));
  out.id = next;
  if (s.task.n_logprobs >= 0) {  // log-softmax of the model's own distribution
    const float* raw = s.raw.data();
    float mx = raw[0];
    for (int32_t i = 1; i < vocab; ++i) mx = std::max(mx, raw[i]);
    double sum = 0;
    for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(raw[i] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    out.logprob = raw[next] - lse;
    const int32_t k = std::min(s.task.n_logprobs, vocab);
    for (int32_t j = 0; j < k; ++j) {  // k <= 20: selection by repeated scans
      int32_t best = -1;
      for (int32_t i = 0; i < vocab; ++i) {
        bool taken = false;
        for (const auto& p : out.top) taken |= p.first == i;
        if (!taken && (best < 0 || raw[i] > raw[best])) best = i;
      }
      out.top.emplace_back(best, raw[best] - lse);
    }
  }
  ++s.n_generated;
  if (!s.task.ignore_eos && (tok_.IsEog(next) || (llama2c_ && next == tok_.bos()))) {
    Finish(s, FinishReason::kStop, "eos");
    return;
  }
  s.tokens.push_back(next);
  bool stopped = false;
  out.text = s.stop->Push(s.decoder->Push(next), &stopped);
  s.sink->OnToken(out);
  if (stopped) {
    Finish(s, FinishReason::kStop, "stop string");
  } else if (s.task.max_tokens >= 0 && s.n_generated >= s.task.max_tokens) {
    Finish(s, FinishReason::kLength, "max_tokens");
  } else if (s.n_past + 1 >= n_ctx()) {
    Finish(s, FinishReason::kLength, "context full");
  } else {
    s.pending = next;
  }
}

void Scheduler::CancelAll() {
  for (Slot& s : slots_) {
    if (s.active) Finish(s, FinishReason::kCancelled, "server shutting down");
  }
}

bool Scheduler::Step() {
  for (Slot& s : slots_) {
    if (s.active && s.sink->Cancelled()) Finish(s, FinishReason::kCancelled, "cancelled");
  }
  batch_.clear();
  batch_slot_.clear();
  const int32_t max_batch = graph_->max_batch();
  bool decoding = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.active || s.pending < 0) continue;
    batch_.push_back({s.pending, static_cast<int32_t>(i), s.n_past, true});
    batch_slot_.push_back(static_cast<int32_t>(i));
    decoding = true;
  }
  // Prompts fill the rest of the batch, round robin; bounded while others stream.
  int32_t budget = max_batch - static_cast<int32_t>(batch_.size());
  if (decoding) budget = std::min(budget, opts_.prefill_chunk);
  for (size_t k = 0; k < slots_.size() && budget > 0; ++k) {
    const size_t i = (rr_ + k) % slots_.size();
    Slot& s = slots_[i];
    if (!s.active || s.pending >= 0) continue;
    const int32_t n_prompt = static_cast<int32_t>(s.task.prompt.size());
    const int32_t take = std::min(budget, n_prompt - s.n_past);
    for (int32_t j = 0; j < take; ++j) {
      const int32_t p = s.n_past + j;
      const bool last = p == n_prompt - 1;
      batch_.push_back({s.task.prompt[p], static_cast<int32_t>(i), p, last});
      if (last) batch_slot_.push_back(static_cast<int32_t>(i));
    }
    budget -= take;
  }
  rr_ = (rr_ + 1) % slots_.size();
  if (batch_.empty()) return false;

  Status st = graph_->ForwardBatch(batch_.data(), static_cast<int32_t>(batch_.size()), logits_.data());
  // Sampling and streaming below are serial: let the compute workers sleep rather than
  // spin on the cores the HTTP threads (and, on a small machine, the clients) need.
  pool_->Park();
  if (!st.ok()) {
    for (int32_t i : batch_slot_) {
      if (slots_[i].active) Finish(slots_[i], FinishReason::kError, st.message());
    }
    return true;
  }
  // Advance cache positions, then sample each logits row in batch order.
  for (const BatchToken& b : batch_) {
    Slot& s = slots_[b.seq];
    s.n_past = std::max(s.n_past, b.pos + 1);
    if (b.logits && s.pending < 0) s.sink->OnPromptDone(static_cast<int32_t>(s.task.prompt.size()));
  }
  const int64_t vocab = model_.config.vocab_size;
  for (size_t r = 0; r < batch_slot_.size(); ++r) {
    Slot& s = slots_[batch_slot_[r]];
    if (!s.active) continue;
    s.pending = -1;
    Sample(s, logits_.data() + r * vocab);
  }
  return true;
}

}  // namespace edgeq
