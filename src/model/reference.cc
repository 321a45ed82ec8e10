#include "model/reference.h"

#include <cmath>

namespace edgeq {
namespace {

std::vector<float> Dense(const Tensor2D& t) {  // [rows][cols]
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) GetRowF32(t, r, out.data() + r * t.cols);
  return out;
}

std::vector<float> Vec(const float* p, int64_t n) { return p ? std::vector<float>(p, p + n) : std::vector<float>(); }

// out[d] = sum_i w[d][i] * x[i]   (w: [d][n])
void RefMatmul(float* out, const float* x, const std::vector<float>& w, int64_t n, int64_t d) {
  for (int64_t i = 0; i < d; ++i) {
    float val = 0.0f;
    for (int64_t j = 0; j < n; ++j) val += w[i * n + j] * x[j];
    out[i] = val;
  }
}

void RefRmsnorm(float* o, const float* x, const float* w, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t j = 0; j < n; ++j) ss += x[j] * x[j];
  ss /= n;
  ss += eps;
  ss = 1.0f / std::sqrt(ss);
  for (int64_t j = 0; j < n; ++j) o[j] = w[j] * (ss * x[j]);
}

void RefSoftmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace

Result<ReferenceForward> ReferenceForward::Create(const Model& m, int32_t n_ctx) {
  ReferenceForward r;
  r.c_ = m.config;
  r.freq_factors_ = m.rope_freq_factors;
  r.n_ctx_ = n_ctx > 0 ? n_ctx : m.config.context_length;
  const ModelConfig& c = m.config;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  r.embd_ = Dense(m.weights.token_embd);
  r.out_ = Dense(m.weights.output);
  r.out_norm_ = Vec(m.weights.output_norm, c.dim);
  for (const LayerWeights& l : m.weights.layers) {
    Layer L;
    L.attn_norm = Vec(l.attn_norm, c.dim);
    L.ffn_norm = Vec(l.ffn_norm, c.dim);
    L.wq = Dense(l.wq);
    L.wk = Dense(l.wk);
    L.wv = Dense(l.wv);
    L.wo = Dense(l.wo);
    L.bq = Vec(l.bq, q_dim);
    L.bk = Vec(l.bk, kv_dim);
    L.bv = Vec(l.bv, kv_dim);
    L.q_norm = Vec(l.q_norm, c.head_dim);
    L.k_norm = Vec(l.k_norm, c.head_dim);
    L.w1 = Dense(l.w_gate);
    L.w2 = Dense(l.w_down);
    L.w3 = Dense(l.w_up);
    r.layers_.push_back(std::move(L));
  }
  r.key_cache_.assign(static_cast<size_t>(c.n_layers) * r.n_ctx_ * kv_dim, 0.0f);
  r.value_cache_.assign(r.key_cache_.size(), 0.0f);
  return r;
}

Result<std::vector<float>> ReferenceForward::Step(int32_t token, int32_t pos) {
  const ModelConfig& c = c_;
  if (token < 0 || token >= c.vocab_size) return InvalidArgument("token out of range");
  if (pos < 0 || pos >= n_ctx_) return OutOfRange("position out of range");
  const int64_t dim = c.dim, hd = c.head_dim, hidden = c.hidden_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  const int64_t kv_mul = c.n_heads / c.n_kv_heads;
  std::vector<float> x(dim), xb(dim), xb2(dim), q(q_dim), k(kv_dim), v(kv_dim), att(n_ctx_), ao(q_dim);
  std::vector<float> hb(hidden), hb2(hidden), logits(c.vocab_size);
  for (int64_t i = 0; i < dim; ++i) x[i] = embd_[token * dim + i];

  for (int32_t l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers_[l];
    RefRmsnorm(xb.data(), x.data(), L.attn_norm.data(), dim, c.rms_eps);
    RefMatmul(q.data(), xb.data(), L.wq, dim, q_dim);
    RefMatmul(k.data(), xb.data(), L.wk, dim, kv_dim);
    RefMatmul(v.data(), xb.data(), L.wv, dim, kv_dim);
    if (!L.bq.empty()) {
      for (int64_t i = 0; i < q_dim; ++i) q[i] += L.bq[i];
      for (int64_t i = 0; i < kv_dim; ++i) k[i] += L.bk[i];
      for (int64_t i = 0; i < kv_dim; ++i) v[i] += L.bv[i];
    }
    if (!L.q_norm.empty()) {
      for (int64_t h = 0; h < c.n_heads; ++h) RefRmsnorm(&q[h * hd], &q[h * hd], L.q_norm.data(), hd, c.rms_eps);
      for (int64_t h = 0; h < c.n_kv_heads; ++h) RefRmsnorm(&k[h * hd], &k[h * hd], L.k_norm.data(), hd, c.rms_eps);
    }
    // RoPE: pair (j, j+1) for "normal", (j, j+hd/2) for "neox".
    for (int64_t i = 0; i < hd / 2; ++i) {
      float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(hd));
      if (!freq_factors_.empty()) freq /= freq_factors_[i];
      freq /= c.rope_scaling.linear_factor;
      const float val = pos * freq;
      const float fcr = std::cos(val), fci = std::sin(val);
      const int64_t a = c.rope_type == RopeType::kNeox ? i : 2 * i;
      const int64_t b = c.rope_type == RopeType::kNeox ? i + hd / 2 : 2 * i + 1;
      for (int64_t h = 0; h < c.n_heads; ++h) {
        float v0 = q[h * hd + a], v1 = q[h * hd + b];
        q[h * hd + a] = v0 * fcr - v1 * fci;
        q[h * hd + b] = v0 * fci + v1 * fcr;
      }
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        float v0 = k[h * hd + a], v1 = k[h * hd + b];
        k[h * hd + a] = v0 * fcr - v1 * fci;
        k[h * hd + b] = v0 * fci + v1 * fcr;
      }
    }
    float* kc = &key_cache_[(static_cast<int64_t>(l) * n_ctx_ + pos) * kv_dim];
    float* vc = &value_cache_[(static_cast<int64_t>(l) * n_ctx_ + pos) * kv_dim];
    for (int64_t i = 0; i < kv_dim; ++i) { kc[i] = k[i]; vc[i] = v[i]; }

    for (int64_t h = 0; h < c.n_heads; ++h) {
      const float* qh = &q[h * hd];
      for (int32_t t = 0; t <= pos; ++t) {
        const float* kt = &key_cache_[(static_cast<int64_t>(l) * n_ctx_ + t) * kv_dim + (h / kv_mul) * hd];
        float score = 0.0f;
        for (int64_t i = 0; i < hd; ++i) score += qh[i] * kt[i];
        att[t] = score / std::sqrt(static_cast<float>(hd));
      }
      RefSoftmax(att.data(), pos + 1);
      float* out = &ao[h * hd];
      for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
      for (int32_t t = 0; t <= pos; ++t) {
        const float* vt = &value_cache_[(static_cast<int64_t>(l) * n_ctx_ + t) * kv_dim + (h / kv_mul) * hd];
        for (int64_t i = 0; i < hd; ++i) out[i] += att[t] * vt[i];
      }
    }
    RefMatmul(xb2.data(), ao.data(), L.wo, q_dim, dim);
    for (int64_t i = 0; i < dim; ++i) x[i] += xb2[i];

    RefRmsnorm(xb.data(), x.data(), L.ffn_norm.data(), dim, c.rms_eps);
    RefMatmul(hb.data(), xb.data(), L.w1, dim, hidden);
    RefMatmul(hb2.data(), xb.data(), L.w3, dim, hidden);
    for (int64_t i = 0; i < hidden; ++i) {
      float val = hb[i];
      val *= 1.0f / (1.0f + std::exp(-val));
      hb[i] = val * hb2[i];
    }
    RefMatmul(xb2.data(), hb.data(), L.w2, hidden, dim);
    for (int64_t i = 0; i < dim; ++i) x[i] += xb2[i];
  }
  RefRmsnorm(x.data(), x.data(), out_norm_.data(), dim, c.rms_eps);
  RefMatmul(logits.data(), x.data(), out_, dim, c.vocab_size);
  return logits;
}

}  // namespace edgeq
