#include "model/transforms.h"

#include <algorithm>
#include <cmath>

#include "ops/hadamard.h"

namespace edgeq {
namespace {

DenseMatrix Dense(const Tensor2D& t) {
  DenseMatrix m;
  if (t.empty()) return m;
  m.rows = t.rows;
  m.cols = t.cols;
  m.w.resize(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) GetRowF32(t, r, m.row(r));
  return m;
}

std::vector<float> Vec(const float* p, int64_t n) { return p ? std::vector<float>(p, p + n) : std::vector<float>(); }

Tensor2D View(const DenseMatrix& m) {
  Tensor2D t;
  if (m.w.empty()) return t;
  t.type = GgmlType::kF32;
  t.data = m.w.data();
  t.rows = m.rows;
  t.cols = m.cols;
  t.row_bytes = static_cast<uint64_t>(m.cols) * 4;
  return t;
}

const float* Ptr(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

// Largest |W[:, j]| over the given matrices (which share their input).
std::vector<float> ColumnMax(std::initializer_list<const DenseMatrix*> ms, int64_t cols) {
  std::vector<float> mx(cols, 0.0f);
  for (const DenseMatrix* m : ms) {
    for (int64_t r = 0; r < m->rows; ++r) {
      const float* row = m->w.data() + r * m->cols;
      for (int64_t j = 0; j < cols; ++j) mx[j] = std::max(mx[j], std::fabs(row[j]));
    }
  }
  return mx;
}

void ScaleColumns(DenseMatrix* m, const std::vector<float>& s) {
  for (int64_t r = 0; r < m->rows; ++r) {
    float* row = m->row(r);
    for (int64_t j = 0; j < m->cols; ++j) row[j] *= s[j];
  }
}

std::vector<float> SmoothScales(const std::vector<float>& act_max, const std::vector<float>& w_max, float alpha) {
  std::vector<float> s(act_max.size());
  for (size_t j = 0; j < s.size(); ++j) {
    const float a = std::max(act_max[j], 1e-5f), w = std::max(w_max[j], 1e-5f);
    s[j] = std::clamp(std::pow(a, alpha) / std::pow(w, 1.0f - alpha), 1e-3f, 1e3f);
  }
  return s;
}

}  // namespace

DenseModel Densify(const Model& m) {
  DenseModel d;
  d.config = m.config;
  d.tokenizer_data = m.tokenizer_data;
  d.rope_freq_factors = m.rope_freq_factors;
  const ModelConfig& c = m.config;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim, kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  d.token_embd = Dense(m.weights.token_embd);
  if (!c.tied_embeddings) d.output = Dense(m.weights.output);
  d.output_norm = Vec(m.weights.output_norm, c.dim);
  for (const LayerWeights& l : m.weights.layers) {
    DenseLayer L;
    L.attn_norm = Vec(l.attn_norm, c.dim);
    L.ffn_norm = Vec(l.ffn_norm, c.dim);
    L.bq = Vec(l.bq, q_dim);
    L.bk = Vec(l.bk, kv_dim);
    L.bv = Vec(l.bv, kv_dim);
    L.q_norm = Vec(l.q_norm, c.head_dim);
    L.k_norm = Vec(l.k_norm, c.head_dim);
    L.wq = Dense(l.wq);
    L.wk = Dense(l.wk);
    L.wv = Dense(l.wv);
    L.wo = Dense(l.wo);
    L.w_gate = Dense(l.w_gate);
    L.w_up = Dense(l.w_up);
    L.w_down = Dense(l.w_down);
    d.layers.push_back(std::move(L));
  }
  return d;
}

std::unique_ptr<Model> ModelView(const DenseModel& d) {
  auto m = std::make_unique<Model>();
  m->config = d.config;
  m->tokenizer_data = d.tokenizer_data;
  m->rope_freq_factors = d.rope_freq_factors;
  m->format = "dense";
  m->path = d.config.name;
  ModelWeights& w = m->weights;
  w.token_embd = View(d.token_embd);
  w.output = d.output.w.empty() ? w.token_embd : View(d.output);
  w.output_norm = Ptr(d.output_norm);
  for (const DenseLayer& L : d.layers) {
    LayerWeights l;
    l.attn_norm = Ptr(L.attn_norm);
    l.ffn_norm = Ptr(L.ffn_norm);
    l.bq = Ptr(L.bq);
    l.bk = Ptr(L.bk);
    l.bv = Ptr(L.bv);
    l.q_norm = Ptr(L.q_norm);
    l.k_norm = Ptr(L.k_norm);
    l.wq = View(L.wq);
    l.wk = View(L.wk);
    l.wv = View(L.wv);
    l.wo = View(L.wo);
    l.w_gate = View(L.w_gate);
    l.w_up = View(L.w_up);
    l.w_down = View(L.w_down);
    w.layers.push_back(l);
  }
  return m;
}

void ApplySmoothing(DenseModel* d, const ActivationStats& stats, float alpha) {
  const ModelConfig& c = d->config;
  const int32_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    DenseLayer& L = d->layers[l];
    auto find = [&](const char* name) -> const ChannelStats* {
      auto it = stats.find({l, name});
      return it == stats.end() ? nullptr : &it->second;
    };
    if (const ChannelStats* st = find("attn_in")) {
      auto s = SmoothScales(st->max_abs, ColumnMax({&L.wq, &L.wk, &L.wv}, c.dim), alpha);
      for (int64_t j = 0; j < c.dim; ++j) L.attn_norm[j] /= s[j];
      ScaleColumns(&L.wq, s);
      ScaleColumns(&L.wk, s);
      ScaleColumns(&L.wv, s);
    }
    if (const ChannelStats* st = find("ffn_in")) {
      auto s = SmoothScales(st->max_abs, ColumnMax({&L.w_gate, &L.w_up}, c.dim), alpha);
      for (int64_t j = 0; j < c.dim; ++j) L.ffn_norm[j] /= s[j];
      ScaleColumns(&L.w_gate, s);
      ScaleColumns(&L.w_up, s);
    }
    if (const ChannelStats* st = find("ffn_mid")) {
      auto s = SmoothScales(st->max_abs, ColumnMax({&L.w_down}, c.hidden_dim), alpha);
      for (int64_t j = 0; j < c.hidden_dim; ++j) {
        float* row = L.w_up.row(j);
        for (int64_t i = 0; i < L.w_up.cols; ++i) row[i] /= s[j];
      }
      ScaleColumns(&L.w_down, s);
    }
    if (const ChannelStats* st = find("attn_out")) {
      // wo input channel h*hd+i comes from v channel (h/group)*hd+i: one scale per v
      // channel, taken over the q heads that share it.
      const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * hd;
      std::vector<float> act(kv_dim, 0.0f), wmax(kv_dim, 0.0f);
      std::vector<float> col = ColumnMax({&L.wo}, L.wo.cols);
      for (int64_t ch = 0; ch < L.wo.cols; ++ch) {
        const int64_t v = (ch / hd) / group * hd + ch % hd;
        act[v] = std::max(act[v], st->max_abs[ch]);
        wmax[v] = std::max(wmax[v], col[ch]);
      }
      auto s = SmoothScales(act, wmax, alpha);
      for (int64_t v = 0; v < kv_dim; ++v) {
        float* row = L.wv.row(v);
        for (int64_t i = 0; i < L.wv.cols; ++i) row[i] /= s[v];
        if (!L.bv.empty()) L.bv[v] /= s[v];
      }
      std::vector<float> s_in(L.wo.cols);
      for (int64_t ch = 0; ch < L.wo.cols; ++ch) s_in[ch] = s[(ch / hd) / group * hd + ch % hd];
      ScaleColumns(&L.wo, s_in);
    }
  }
}

void ApplyBlockRotation(DenseModel* d) {
  for (DenseLayer& L : d->layers) {
    for (DenseMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      for (int64_t r = 0; r < m->rows; ++r) BlockHadamard(m->row(r), m->cols);
    }
  }
  d->config.rotate_inputs = true;
}

}  // namespace edgeq
