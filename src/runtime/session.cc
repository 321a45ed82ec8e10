#include "runtime/session.h"

#include <algorithm>
#include <thread>

namespace edgeq {

Result<std::unique_ptr<Session>> Session::Create(const Model& model, const Tokenizer& tok,
                                                 const SessionOptions& opts) {
  std::unique_ptr<Session> s(new Session(model, tok));
  int32_t threads = opts.n_threads > 0 ? opts.n_threads
                                       : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 256) return InvalidArgument("too many threads: " + std::to_string(threads));
  int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : model.config.context_length;
  if (n_ctx > model.config.context_length) {
    return InvalidArgument("context size " + std::to_string(n_ctx) + " exceeds the model's training context " +
                           std::to_string(model.config.context_length));
  }
  if (opts.batch <= 0) return InvalidArgument("batch size must be positive");
  s->pool_ = std::make_unique<ThreadPool>(threads);
  ASSIGN_OR_RETURN(s->graph_, LlamaGraph::Create(model, n_ctx, std::min(opts.batch, n_ctx), s->pool_.get(), 1, opts.kv));
  s->opts_ = opts;
  s->graph_->set_adaptive_act_bits(opts.adaptive_act_bits);
  s->logits_.resize(model.config.vocab_size);
  s->history_.reserve(n_ctx);
  return s;
}

Status Session::Eval(const int32_t* tokens, int32_t n, bool all_logits, float* logits) {
  RETURN_IF_ERROR(graph_->Forward(tokens, n, pos_, all_logits, logits));
  pos_ += n;
  history_.insert(history_.end(), tokens, tokens + n);  // capacity reserved: no allocation
  return Status::Ok();
}

Status Session::Generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                         const std::function<bool(const std::string&)>& on_text, GenerateStats* stats) {
  using Clock = std::chrono::steady_clock;
  GenerateStats local;
  GenerateStats& st = stats ? *stats : local;
  st = GenerateStats{};
  if (prompt.empty()) return InvalidArgument("empty prompt: nothing to condition on (not even BOS)");
  if (pos_ + static_cast<int64_t>(prompt.size()) > n_ctx()) {
    return OutOfRange("prompt of " + std::to_string(prompt.size()) + " tokens does not fit in the context (" +
                      std::to_string(n_ctx() - pos_) + " positions left of " + std::to_string(n_ctx()) +
                      "); use a larger -c or a shorter prompt");
  }
  Sampler sampler(opts.sampler, model_.config.vocab_size);
  StreamDecoder decoder(tok_);
  StopMatcher stop(opts.stop);
  const bool llama2c = model_.format.rfind("llama2c", 0) == 0;

  auto t0 = Clock::now();
  RETURN_IF_ERROR(Eval(prompt, false, logits_.data()));
  auto t1 = Clock::now();
  st.n_prompt = static_cast<int32_t>(prompt.size());
  st.prompt_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  decoder.Push(prompt.back());  // primes "previous token"; a prompt's own text is not echoed
  (void)decoder.Flush();

  st.stop_reason = "length";
  int32_t budget = opts.n_predict < 0 ? n_ctx() : opts.n_predict;
  bool stopped = false;
  while (st.n_generated < budget) {
    const int32_t next = sampler.Sample(logits_.data(), history_.data(), static_cast<int64_t>(history_.size()));
    ++st.n_generated;
    if (opts.out_tokens != nullptr) opts.out_tokens->push_back(next);
    if (!opts.ignore_eos && (tok_.IsEog(next) || (llama2c && next == tok_.bos()))) {
      st.stop_reason = "eos";
      break;
    }
    std::string text = stop.Push(decoder.Push(next), &stopped);
    if (!text.empty() && !on_text(text)) {
      st.stop_reason = "cancelled";
      break;
    }
    if (stopped) {
      st.stop_reason = "stop";
      break;
    }
    if (st.n_generated >= budget) break;
    if (pos_ >= n_ctx()) {
      if (!opts_.ctx_shift && opts.n_predict < 0) {  // "until EOS or the context is full"
        st.stop_reason = "context";
        break;
      }
      if (!opts_.ctx_shift) {
        return OutOfRange("context full after " + std::to_string(st.n_generated) + " generated tokens (" +
                          std::to_string(n_ctx()) + " positions); use a larger -c, a smaller -n, or --ctx-shift");
      }
      RETURN_IF_ERROR(ShiftContext());
      ++st.n_shifts;
    }
    RETURN_IF_ERROR(Eval(&next, 1, false, logits_.data()));
  }
  if (!stopped && st.stop_reason != "cancelled") {
    std::string rest = stop.Push(decoder.Flush(), &stopped);
    rest += stopped ? "" : stop.Flush();
    if (!rest.empty()) on_text(rest);
  }
  st.gen_ms = std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
  return Status::Ok();
}

// Keeps the first kv.sinks tokens (the attention sinks) and the newer half of the rest,
// and re-evaluates them at positions 0..: RoPE'd keys cannot be moved in place, and the
// quantized formats would need a dequantize-rotate-requantize pass anyway.
Status Session::ShiftContext() {
  const int32_t keep = std::min<int32_t>(std::max(opts_.kv.sinks, 0), pos_ / 2);
  const int32_t rest = pos_ - keep;
  const int32_t drop = rest - rest / 2;
  std::vector<int32_t> kept(history_.begin(), history_.begin() + keep);
  kept.insert(kept.end(), history_.begin() + keep + drop, history_.end());
  Reset();
  return Eval(kept, false, logits_.data());
}

std::string StopMatcher::Push(const std::string& text, bool* stopped) {
  *stopped = false;
  held_ += text;
  if (stops_.empty()) {
    std::string out;
    out.swap(held_);
    return out;
  }
  size_t cut = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    size_t at = held_.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    *stopped = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Keep the longest suffix that is a prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace edgeq
