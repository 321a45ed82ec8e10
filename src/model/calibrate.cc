#include "model/calibrate.h"

#include <algorithm>
#include <cmath>

#include "model/llama.h"

namespace edgeq {
namespace {

class StatsObserver : public ActivationObserver {
 public:
  explicit StatsObserver(ActivationStats* s) : s_(s) {}
  void Observe(int32_t layer, const char* name, const float* x, int32_t n_tok, int64_t dim) override {
    ChannelStats& cs = (*s_)[{layer, name}];
    if (cs.max_abs.empty()) {
      cs.max_abs.assign(dim, 0.0f);
      cs.sum_abs.assign(dim, 0.0);
      cs.sum_sq.assign(dim, 0.0);
    }
    for (int32_t t = 0; t < n_tok; ++t) {
      const float* r = x + t * dim;
      for (int64_t j = 0; j < dim; ++j) {
        const float a = std::fabs(r[j]);
        cs.max_abs[j] = std::max(cs.max_abs[j], a);
        cs.sum_abs[j] += a;
        cs.sum_sq[j] += static_cast<double>(a) * a;
      }
    }
    cs.count += n_tok;
  }

 private:
  ActivationStats* s_;
};

class HessianObserver : public ActivationObserver {
 public:
  HessianObserver(HessianStats* s, ThreadPool* pool) : s_(s), pool_(pool) {}
  void Observe(int32_t layer, const char* name, const float* x, int32_t n_tok, int64_t dim) override {
    if (layer < 0) return;  // the output head's input: not quantized with GPTQ
    InputHessian& ih = (*s_)[{layer, name}];
    if (ih.h.empty()) {
      ih.h.assign(static_cast<size_t>(dim * dim), 0.0);
      ih.dim = dim;
    }
    double* h = ih.h.data();
    // Rows of H are independent: split them over the pool.
    pool_->ParallelFor(dim, 16, [&](int, int64_t i0, int64_t i1) {
      for (int32_t t = 0; t < n_tok; ++t) {
        const float* r = x + t * dim;
        for (int64_t i = i0; i < i1; ++i) {
          const double xi = r[i];
          if (xi == 0) continue;
          double* hi = h + i * dim;
          for (int64_t j = i; j < dim; ++j) hi[j] += xi * r[j];
        }
      }
    });
    ih.count += n_tok;
  }

 private:
  HessianStats* s_;
  ThreadPool* pool_;
};

}  // namespace

Result<HessianStats> CollectInputHessians(const Model& model, const std::vector<int32_t>& tokens, int32_t n_ctx,
                                          int32_t chunks, int32_t n_threads) {
  if (chunks <= 0 || static_cast<int64_t>(tokens.size()) < static_cast<int64_t>(chunks) * n_ctx) {
    return InvalidArgument("calibration text is shorter than one chunk of " + std::to_string(n_ctx) + " tokens");
  }
  ThreadPool pool(n_threads > 0 ? n_threads : 2);
  ThreadPool obs_pool(n_threads > 0 ? n_threads : 2);
  ASSIGN_OR_RETURN(auto graph, LlamaGraph::Create(model, n_ctx, 64, &pool));
  HessianStats stats;
  HessianObserver obs(&stats, &obs_pool);
  graph->set_observer(&obs);
  std::vector<float> logits(model.config.vocab_size);
  for (int32_t c = 0; c < chunks; ++c) {
    RETURN_IF_ERROR(graph->Forward(tokens.data() + static_cast<int64_t>(c) * n_ctx, n_ctx, 0, false, logits.data()));
  }
  return stats;
}

Result<ActivationStats> CollectActivationStats(const Model& model, const Tokenizer& tok, const std::string& text,
                                               int32_t n_ctx, int32_t max_chunks, int32_t n_threads) {
  n_ctx = std::min(n_ctx > 0 ? n_ctx : model.config.context_length, model.config.context_length);
  std::vector<int32_t> tokens = tok.Encode(text, true, false);
  const int32_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(tokens.size()) / n_ctx);
  if (chunks <= 0) return InvalidArgument("calibration text is too short: " + std::to_string(tokens.size()) + " tokens");
  ThreadPool pool(n_threads > 0 ? n_threads : 2);
  ASSIGN_OR_RETURN(auto graph, LlamaGraph::Create(model, n_ctx, 64, &pool));
  ActivationStats stats;
  StatsObserver obs(&stats);
  graph->set_observer(&obs);
  std::vector<float> logits(model.config.vocab_size);
  for (int32_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + static_cast<int64_t>(c) * n_ctx,
                               tokens.begin() + static_cast<int64_t>(c + 1) * n_ctx);
    if (tok.bos() >= 0 && tok.data().add_bos) chunk[0] = tok.bos();
    RETURN_IF_ERROR(graph->Forward(chunk.data(), n_ctx, 0, false, logits.data()));
  }
  return stats;
}

}  // namespace edgeq
