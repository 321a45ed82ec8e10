#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>

namespace edgeq {
namespace {

// log-softmax of one row into `out`; returns nothing, out[i] = log p_i.
void LogSoftmax(const float* logits, int64_t n, double* out) {
  float mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = std::log(sum) + mx;
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

}  // namespace

Result<PerplexityResult> ComputePerplexity(const Model& model, const Tokenizer& tok, const Model* base,
                                           const std::string& text, const PerplexityOptions& opts,
                                           const std::function<void(int, int)>& progress) {
  const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : model.config.context_length;
  if (n_ctx < 4) return InvalidArgument("perplexity needs a context of at least 4 tokens");
  if (base != nullptr && base->config.vocab_size != model.config.vocab_size) {
    return InvalidArgument("base model vocabulary (" + std::to_string(base->config.vocab_size) +
                           ") differs from the model's (" + std::to_string(model.config.vocab_size) + ")");
  }
  const bool add_bos = tok.data().add_bos && tok.bos() >= 0;
  std::vector<int32_t> tokens = tok.Encode(text, /*add_special=*/true, /*parse_special=*/false);
  int32_t n_chunks = static_cast<int32_t>(tokens.size() / n_ctx);
  if (opts.max_chunks >= 0) n_chunks = std::min(n_chunks, opts.max_chunks);
  if (n_chunks <= 0) {
    return InvalidArgument("text has " + std::to_string(tokens.size()) + " tokens; need at least " +
                           std::to_string(n_ctx) + " (one chunk of -c tokens)");
  }
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_threads = opts.n_threads;
  so.batch = opts.batch;
  SessionOptions model_so = so;
  model_so.adaptive_act_bits = opts.adaptive_act_bits;
  model_so.kv = opts.kv;
  ASSIGN_OR_RETURN(auto session, Session::Create(model, tok, model_so));
  std::unique_ptr<Session> base_session;
  if (base != nullptr) {
    ASSIGN_OR_RETURN(base_session, Session::Create(*base, tok, so));
  }

  const int64_t V = model.config.vocab_size;
  std::vector<float> logits(static_cast<size_t>(n_ctx) * V);
  std::vector<float> base_logits(base ? static_cast<size_t>(n_ctx) * V : 0);
  std::vector<double> lp(V), lq(V);
  std::vector<float> klds;
  const int32_t first = n_ctx / 2;
  double nll = 0, base_nll = 0, kld_sum = 0;
  int64_t count = 0, agree = 0;
  std::vector<int32_t> chunk(n_ctx);
  for (int32_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + static_cast<int64_t>(c) * n_ctx, tokens.begin() + static_cast<int64_t>(c + 1) * n_ctx,
              chunk.begin());
    if (add_bos) chunk[0] = tok.bos();
    session->Reset();
    RETURN_IF_ERROR(session->Eval(chunk, /*all_logits=*/true, logits.data()));
    if (base_session) {
      base_session->Reset();
      RETURN_IF_ERROR(base_session->Eval(chunk, true, base_logits.data()));
    }
    for (int32_t j = first; j < n_ctx - 1; ++j) {
      const int32_t target = tokens[static_cast<int64_t>(c) * n_ctx + j + 1];
      LogSoftmax(logits.data() + static_cast<int64_t>(j) * V, V, lq.data());
      nll -= lq[target];
      ++count;
      if (base_session) {
        LogSoftmax(base_logits.data() + static_cast<int64_t>(j) * V, V, lp.data());
        base_nll -= lp[target];
        double kl = 0;
        int64_t am_p = 0, am_q = 0;
        for (int64_t i = 0; i < V; ++i) {
          kl += std::exp(lp[i]) * (lp[i] - lq[i]);
          if (lp[i] > lp[am_p]) am_p = i;
          if (lq[i] > lq[am_q]) am_q = i;
        }
        kl = std::max(kl, 0.0);
        kld_sum += kl;
        klds.push_back(static_cast<float>(kl));
        agree += am_p == am_q;
      }
    }
    if (progress) progress(c + 1, n_chunks);
  }
  PerplexityResult r;
  r.chunks = n_chunks;
  r.n_ctx = n_ctx;
  r.tokens_scored = count;
  r.nll_mean = nll / count;
  r.ppl = std::exp(r.nll_mean);
  r.low_bit_fraction = session->graph().low_bit_fraction();
  r.kv_bytes = session->graph().KvBytes();
  r.kv_bytes_per_token = session->graph().KvBytesPerToken();
  session->graph().KvPrecisionCounts(0, n_ctx, r.kv_precision);
  if (base_session) {
    r.has_kl = true;
    r.kld_mean = kld_sum / count;
    std::sort(klds.begin(), klds.end());
    // Nearest-rank 99th percentile.
    size_t k = static_cast<size_t>(std::ceil(0.99 * klds.size()));
    r.kld_p99 = klds[std::min(klds.size() - 1, k > 0 ? k - 1 : 0)];
    r.kld_max = klds.back();
    r.top1_agree = static_cast<double>(agree) / count;
    r.base_ppl = std::exp(base_nll / count);
  }
  return r;
}

}  // namespace edgeq
