#include "model/llama.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>

#include "core/memory_budget.h"
#include "kernels/kernels.h"
#include "kernels/quant_act.h"
#include "ops/hadamard.h"

namespace edgeq {

RopeParams MakeRopeParams(const ModelConfig& c, const std::vector<float>& freq_factors) {
  RopeParams rp;
  rp.head_dim = c.head_dim;
  rp.neox = c.rope_type == RopeType::kNeox;
  const int32_t half = c.head_dim / 2;
  rp.inv_freq.resize(half);
  const RopeScaling& s = c.rope_scaling;
  for (int32_t i = 0; i < half; ++i) {
    // powf in float, as llama2.c computes it: keeps greedy output byte-identical.
    float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
    if (!freq_factors.empty()) {
      freq /= freq_factors[i];
    } else if (s.factor > 0) {  // Llama-3 frequency-dependent scaling
      const float low_wavelen = s.original_context / s.low_freq_factor;
      const float high_wavelen = s.original_context / s.high_freq_factor;
      const float wavelen = 2.0f * static_cast<float>(M_PI) / freq;
      if (wavelen > low_wavelen) {
        freq = freq / s.factor;
      } else if (wavelen >= high_wavelen) {
        const float smooth = (s.original_context / wavelen - s.low_freq_factor) /
                             (s.high_freq_factor - s.low_freq_factor);
        freq = (1.0f - smooth) * freq / s.factor + smooth * freq;
      }
    }
    rp.inv_freq[i] = freq / s.linear_factor;
  }
  return rp;
}

// Positions per block of the fp32 path's online-softmax attention, and the most
// consecutive positions of one sequence it attends together (a tile). 16: the AVX-512
// score kernel works on groups of 16 key rows and keeps them in L1 for every query of the
// call, so more queries per call read and set up each group for more of them (pp128 of
// stories15m: attention's share 13-15% at 4, 11-12% at 8 and 16; the diagonal's masked
// scores cost less than that).
constexpr int32_t kAttBlock = 64;
constexpr int32_t kAttTile = 16;

static void RotateRows(float* x, int32_t n, int64_t dim) {
  for (int32_t t = 0; t < n; ++t) BlockHadamard(x + t * dim, dim);
}

Result<std::unique_ptr<LlamaGraph>> LlamaGraph::Create(const Model& model, int32_t n_ctx,
                                                       int32_t max_batch, ThreadPool* pool, int32_t n_seq,
                                                       const KvCacheOptions& kv) {
  const ModelConfig& c = model.config;
  if (n_ctx <= 0) n_ctx = c.context_length;
  if (max_batch <= 0) return InvalidArgument("max_batch must be positive");
  if (n_seq <= 0 || n_seq > 4096) return InvalidArgument("number of sequences must be in 1..4096");
  std::unique_ptr<LlamaGraph> g(new LlamaGraph(model, pool));
  g->n_ctx_ = n_ctx;
  g->max_batch_ = max_batch;
  g->n_seq_ = n_seq;
  g->rope_ = MakeRopeParams(c, model.rope_freq_factors);
  const int64_t B = max_batch;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  const int64_t max_cols = std::max<int64_t>({c.dim, c.hidden_dim, q_dim});
  const int64_t T = pool->size();
  const bool exact = kv.type == KvType::kF32 && !kv.adaptive;
  // Attention scores: [threads][n_ctx]; the quantized path scores a whole GQA group at once.
  // The fp32 path attends with an online softmax over blocks of kAttBlock positions, so
  // it needs one block of scores per query of a tile per thread, whatever the context.
  const int64_t att_rows = exact ? 1 : c.n_heads / c.n_kv_heads;
  const int64_t att_floats = exact ? T * kAttTile * kAttBlock : T * n_ctx * att_rows;
  {
    // Sizes in double first: a huge context x sequences x layers product must not wrap.
    // Quantized caches: the bytes of their rows (adaptive: at most 8-bit rows).
    const double row_bytes = exact ? static_cast<double>(kv_dim) * sizeof(float)
                                   : static_cast<double>(KvRowBytes(kv.adaptive ? KvType::kQ8 : kv.type,
                                                                    static_cast<int32_t>(kv_dim)));
    // Channel key layout: plus each (layer, sequence)'s fp16 residual block.
    const double kv_d = 2.0 * c.n_layers * static_cast<double>(n_seq) * n_ctx * row_bytes +
                        (kv.key_channels ? 2.0 * c.n_layers * static_cast<double>(n_seq) * kKvTokenGroup * kv_dim : 0.0);
    const double arena_d = (static_cast<double>(B) * 2 * (c.dim + q_dim + kv_dim + c.hidden_dim) +
                            static_cast<double>(att_floats) + static_cast<double>(T) * max_cols) * sizeof(float) +
                           static_cast<double>(QuantActBytes(B, std::max<int64_t>({c.dim, c.hidden_dim, q_dim})));
    const std::string what = "the KV cache for context " + std::to_string(n_ctx) + " x " + std::to_string(n_seq) +
                             " sequence(s) and the activation arena for batch " + std::to_string(max_batch);
    const std::string detail = "KV cache " + FormatBytes(static_cast<uint64_t>(std::min(kv_d, 9e18))) +
                               ", arena " + FormatBytes(static_cast<uint64_t>(std::min(arena_d, 9e18)));
    if (kv_d + arena_d >= 9e18) {
      return ResourceExhausted(what + " is too large to allocate (" + detail + "); try a smaller -c or fewer parallel slots");
    }
    Status fits = CheckMemoryFits(static_cast<uint64_t>(kv_d + arena_d), what, detail);
    if (!fits.ok()) return ResourceExhausted(fits.message() + "; try a smaller -c or fewer parallel slots");
  }
  const int64_t kv_elems = static_cast<int64_t>(c.n_layers) * n_seq * n_ctx * kv_dim;
  const int64_t arena = B * c.dim * 2 + B * q_dim * 2 + B * kv_dim * 2 + B * c.hidden_dim * 2 +
                        att_floats + T * max_cols;
  g->kv_opts_ = kv;
  if (!exact) {
    ASSIGN_OR_RETURN(g->kvq_, KvCache::Create(c.n_layers, n_seq, n_ctx, static_cast<int32_t>(kv_dim),
                                              static_cast<int32_t>(T), kv));
  }
  try {
    if (exact) {
      g->kv_k_.assign(kv_elems, 0.0f);
      g->kv_v_.assign(kv_elems, 0.0f);
    }
    g->arena_.assign(arena, 0.0f);
    g->batch_.resize(max_batch);
    g->att_tiles_.resize(max_batch + 1);
    g->rope_cs_.assign(static_cast<size_t>(max_batch) * c.head_dim, 0.0f);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("cannot allocate the KV cache (" +
                             std::to_string(kv_elems * 8 / (1 << 20)) + " MiB) and activations for context " +
                             std::to_string(n_ctx) + " x " + std::to_string(n_seq) +
                             " sequence(s); try a smaller -c or fewer parallel slots");
  }
  float* p = g->arena_.data();
  auto take = [&](int64_t n) {
    float* q = p;
    p += n;
    return q;
  };
  g->x_ = take(B * c.dim);
  g->xb_ = take(B * c.dim);
  g->q_ = take(B * q_dim);
  g->attn_out_ = take(B * q_dim);
  g->k_ = take(B * kv_dim);
  g->v_ = take(B * kv_dim);
  g->hb_ = take(B * c.hidden_dim);
  g->hb2_ = take(B * c.hidden_dim);
  g->att_ = take(att_floats);
  g->scratch_ = take(T * max_cols);
  const int64_t max_in = std::max<int64_t>({c.dim, c.hidden_dim, q_dim});
  g->act_arena_.assign(QuantActBytes(B, max_in), 0);
  g->mm_.rows = g->scratch_;
  g->mm_.act = g->act_arena_.data();
  g->mm_.act_bytes = g->act_arena_.size();
  g->sink_.assign(B * c.n_heads, 0.0f);
  g->low_bits_.assign(B, 0);
  g->sink_ema_.assign(c.n_layers, -1.0);
  return g;
}

float* LlamaGraph::KCache(int32_t layer, int32_t seq) {
  const ModelConfig& c = model_.config;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  return kv_k_.data() + (static_cast<int64_t>(layer) * n_seq_ + seq) * n_ctx_ * kv_dim;
}

float* LlamaGraph::VCache(int32_t layer, int32_t seq) {
  const ModelConfig& c = model_.config;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  return kv_v_.data() + (static_cast<int64_t>(layer) * n_seq_ + seq) * n_ctx_ * kv_dim;
}

Status LlamaGraph::Validate(const BatchToken* batch, int32_t n) const {
  const ModelConfig& c = model_.config;
  if (n <= 0) return InvalidArgument("no tokens to evaluate");
  for (int32_t i = 0; i < n; ++i) {
    const BatchToken& b = batch[i];
    if (b.token < 0 || b.token >= c.vocab_size) {
      return InvalidArgument("token id " + std::to_string(b.token) + " is outside the vocabulary (size " +
                             std::to_string(c.vocab_size) + ")");
    }
    if (b.seq < 0 || b.seq >= n_seq_) {
      return InvalidArgument("sequence " + std::to_string(b.seq) + " does not exist (" + std::to_string(n_seq_) +
                             " sequences)");
    }
    if (b.pos < 0 || b.pos >= n_ctx_) {
      return OutOfRange("context full: position " + std::to_string(b.pos) + " is beyond the context size " +
                        std::to_string(n_ctx_));
    }
  }
  return Status::Ok();
}

Status LlamaGraph::Forward(const int32_t* tokens, int32_t n, int32_t pos, bool all_logits,
                           float* logits) {
  const ModelConfig& c = model_.config;
  if (n <= 0) return InvalidArgument("no tokens to evaluate");
  if (pos < 0 || static_cast<int64_t>(pos) + n > n_ctx_) {
    return OutOfRange("context full: " + std::to_string(pos) + " + " + std::to_string(n) +
                      " tokens exceed the context size " + std::to_string(n_ctx_));
  }
  for (int32_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (size " +
                             std::to_string(c.vocab_size) + ")");
    }
  }
  for (int32_t done = 0; done < n; done += max_batch_) {
    const int32_t m = std::min(max_batch_, n - done);
    const bool last = done + m == n;
    for (int32_t i = 0; i < m; ++i) {
      batch_[i] = BatchToken{tokens[done + i], 0, pos + done + i, all_logits || (last && i == m - 1)};
    }
    float* out = all_logits ? logits + static_cast<int64_t>(done) * c.vocab_size : (last ? logits : nullptr);
    ForwardChunk(m, out);
  }
  return Status::Ok();
}

Status LlamaGraph::ForwardBatch(const BatchToken* batch, int32_t n, float* logits) {
  if (n > max_batch_) {
    return InvalidArgument("batch of " + std::to_string(n) + " tokens exceeds the graph's maximum of " +
                           std::to_string(max_batch_));
  }
  RETURN_IF_ERROR(Validate(batch, n));
  std::copy(batch, batch + n, batch_.begin());
  ForwardChunk(n, logits);
  return Status::Ok();
}

void LlamaGraph::Attention(int32_t layer, int32_t t0, int32_t t1) {
  const int32_t n = t1 - t0;
  const ModelConfig& c = model_.config;
  const int32_t hd = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * hd;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * hd;
  const int32_t group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KernelTable& k = Kernels();
  if (kvq_) {  // one item per (token, KV head): its query heads share every row read
    pool_.ParallelForDynamic(static_cast<int64_t>(n) * c.n_kv_heads, 1, [&](int tid, int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        AttendQuantized(layer, t0 + static_cast<int32_t>(item / c.n_kv_heads),
                        static_cast<int32_t>(item % c.n_kv_heads), tid);
      }
    });
    return;
  }
  // Tiles of up to kAttTile consecutive positions of one sequence (a prefill chunk gives
  // full tiles, batched decode tiles of one): the score and value kernels read each key
  // and value row once for all the queries of a work item. Items (below: a tile's
  // positions for one head in prefill, a group of heads sharing a KV head in decode) are
  // claimed dynamically: causal attention gives later tokens more work, so a static split
  // would leave one thread with most of it. The last tiles (a prefill chunk's longest) are
  // claimed first, so the items left at the end, when threads run out of work one by
  // one, are the short ones.
  // Online softmax over blocks of kAttBlock positions: scores of a block, each query's
  // running max m and sum l; when a block raises m, that query's output so far and l are
  // rescaled by exp(m_old - m_new). One pass over K and V, and scratch of one block per
  // query of a tile per thread. Scores past a query's own position (the tile's later
  // positions) are set to 0 before the value sum.
  int32_t n_tiles = 0;
  bool decode = true;  // every tile one position
  for (int32_t t = t0; t < t1;) {
    int32_t e = t + 1;
    while (e < t1 && e - t < kAttTile && batch_[e].seq == batch_[t].seq && batch_[e].pos == batch_[e - 1].pos + 1) ++e;
    att_tiles_[n_tiles++] = t;
    decode = decode && e - t == 1;
    t = e;
  }
  att_tiles_[n_tiles] = t1;
  // Decode: an item's queries are the heads that share a KV head (GQA), up to kAttTile of
  // them, all at the tile's one position, so each key and value row is read once for the
  // group rather than once per head (tinyllama's 8 heads per KV head re-read 3 MB per layer
  // 8 times at depth 1536); a group is cut into more items only where there would
  // otherwise be fewer items than threads. Prefill: an item's queries are the tile's
  // positions, one head.
  int32_t items_per_kv = group;  // prefill: one head per item
  if (decode) {
    const int64_t kv_items = static_cast<int64_t>(n_tiles) * c.n_kv_heads;
    items_per_kv = std::max<int32_t>((group + kAttTile - 1) / kAttTile,
                                     static_cast<int32_t>(std::min<int64_t>(group, (pool_.size() + kv_items - 1) / kv_items)));
  }
  const int32_t heads_per_item = (group + items_per_kv - 1) / items_per_kv;
  items_per_kv = (group + heads_per_item - 1) / heads_per_item;
  const int64_t items_per_tile = static_cast<int64_t>(c.n_kv_heads) * items_per_kv;
  const int64_t kv_row_bytes = kv_dim * static_cast<int64_t>(sizeof(float));
  pool_.ParallelForDynamic(n_tiles * items_per_tile, 1, [&](int tid, int64_t b, int64_t e) {
    float* att = att_ + static_cast<int64_t>(tid) * kAttTile * kAttBlock;
    for (int64_t item = b; item < e; ++item) {
      const int32_t ti = n_tiles - 1 - static_cast<int32_t>(item / items_per_tile);
      const int32_t kvh = static_cast<int32_t>(item % items_per_tile) / items_per_kv;
      const int32_t h0 = kvh * group + static_cast<int32_t>(item % items_per_kv) * heads_per_item;
      const int32_t ta = att_tiles_[ti];
      // Query j: head h0 + j of token ta (decode), or head h0 of token ta + j (prefill).
      const int32_t nq = decode ? std::min(heads_per_item, (kvh + 1) * group - h0) : att_tiles_[ti + 1] - ta;
      const int64_t qs = decode ? hd : q_dim;  // query (and output) stride
      const int32_t pos0 = batch_[ta].pos;
      const int32_t len = pos0 + (decode ? 1 : nq);  // the last query sees positions 0..len-1
      const int64_t off = static_cast<int64_t>(kvh) * hd;
      const float* kc = KCache(layer, batch_[ta].seq);
      const float* vc = VCache(layer, batch_[ta].seq);
      const float* q = q_ + ta * q_dim + static_cast<int64_t>(h0) * hd;
      float* out = attn_out_ + ta * q_dim + static_cast<int64_t>(h0) * hd;
      float m[kAttTile], l[kAttTile], s0[kAttTile];
      for (int32_t j = 0; j < nq; ++j) {
        std::memset(out + j * qs, 0, sizeof(float) * hd);
        m[j] = -std::numeric_limits<float>::infinity();
        l[j] = 0.0f;
        s0[j] = 0.0f;
      }
      for (int32_t p0 = 0; p0 < len; p0 += kAttBlock) {
        const int32_t nb = std::min(kAttBlock, len - p0);
        KvSpan ks;
        ks.kind = KvKernel::kF32;
        ks.dim = static_cast<int32_t>(kv_dim);
        ks.n = nb;
        ks.rows = reinterpret_cast<const uint8_t*>(kc + static_cast<int64_t>(p0) * kv_dim);
        ks.stride = kv_row_bytes;
        k.kv_scores(ks, off, hd, q, nq, qs, scale, att, kAttBlock);
        for (int32_t j = 0; j < nq; ++j) {
          float* a = att + j * kAttBlock;
          const int32_t nv = std::min(nb, pos0 + (decode ? 0 : j) + 1 - p0);  // keys this query may see
          if (nv <= 0) {
            std::memset(a, 0, sizeof(float) * nb);
            continue;
          }
          if (p0 == 0) s0[j] = a[0];
          const float bm = k.max_f32(a, nv);
          if (bm > m[j]) {
            if (l[j] > 0.0f) {
              const float r = std::exp(m[j] - bm);
              l[j] *= r;
              k.scale_f32(out + j * qs, hd, r);
            }
            m[j] = bm;
          }
          l[j] += k.exp_sum_f32(a, nv, m[j]);
          for (int32_t s = nv; s < nb; ++s) a[s] = 0.0f;
        }
        KvSpan vs = ks;
        vs.rows = reinterpret_cast<const uint8_t*>(vc + static_cast<int64_t>(p0) * kv_dim);
        k.kv_accum(vs, off, hd, att, nq, kAttBlock, out, qs);
      }
      for (int32_t j = 0; j < nq; ++j) {
        const float inv = 1.0f / l[j];
        k.scale_f32(out + j * qs, hd, inv);
        const int64_t si = decode ? static_cast<int64_t>(ta) * c.n_heads + h0 + j : static_cast<int64_t>(ta + j) * c.n_heads + h0;
        sink_[si] = std::exp(s0[j] - m[j]) * inv;  // attention to the first token
      }
    }
  });
}

// One token and one KV head over the quantized cache, for all the query heads that share
// that KV head (GQA): the kernels read each stored row once for the whole group, run by
// run (ForEachSpan), so no dequantized copy is made. att: [group][n_ctx].
void LlamaGraph::AttendQuantized(int32_t layer, int32_t t, int32_t kvh, int tid) {
  const ModelConfig& c = model_.config;
  const int32_t hd = c.head_dim;
  const int32_t group = c.n_heads / c.n_kv_heads;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * hd;
  const int64_t off = static_cast<int64_t>(kvh) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KernelTable& k = Kernels();
  const int32_t seq = batch_[t].seq;
  const int32_t len = batch_[t].pos + 1;
  float* att = att_ + static_cast<int64_t>(tid) * group * n_ctx_;
  for (int32_t h0 = 0; h0 < group; h0 += kKvMaxGroup) {
    const int32_t nq = std::min(kKvMaxGroup, group - h0);
    const int32_t h = kvh * group + h0;  // first query head of this call
    const float* q = q_ + t * q_dim + static_cast<int64_t>(h) * hd;
    kvq_->ForEachSpan(layer, seq, len, [&](int32_t p0, const KvSpan& ks, const KvSpan&) {
      k.kv_scores(ks, off, hd, q, nq, hd, scale, att + p0, n_ctx_);
    });
    for (int32_t j = 0; j < nq; ++j) {
      float* a = att + static_cast<int64_t>(j) * n_ctx_;
      Softmax(a, len);
      sink_[t * c.n_heads + h + j] = a[0];
    }
    if (kvq_->tracks_importance()) {
      float* acc = kvq_->ImportanceScratch(tid, seq);
      for (int32_t j = 0; j < nq; ++j) {
        const float* a = att + static_cast<int64_t>(j) * n_ctx_;
        for (int32_t s = 0; s < len; ++s) acc[s] += a[s];
      }
    }
    float* out = attn_out_ + t * q_dim + static_cast<int64_t>(h) * hd;
    std::memset(out, 0, sizeof(float) * hd * nq);
    kvq_->ForEachSpan(layer, seq, len, [&](int32_t p0, const KvSpan&, const KvSpan& vs) {
      k.kv_accum(vs, off, hd, att + p0, nq, n_ctx_, out, hd);
    });
    if (kv_opts_.rotate) {
      for (int32_t j = 0; j < nq; ++j) KvUnrotate(out + static_cast<int64_t>(j) * hd, hd);
    }
  }
}

void LlamaGraph::KvPrecisionCounts(int32_t seq, int32_t len, int64_t counts[3]) const {
  const int32_t L = model_.config.n_layers;
  if (!kvq_) {
    counts[2] += static_cast<int64_t>(L) * len;
    return;
  }
  for (int32_t l = 0; l < L; ++l) kvq_->CountPrecisions(l, seq, len, counts);
}

void LlamaGraph::FillKvForBench(int32_t seq, int32_t n) {
  const ModelConfig& c = model_.config;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  std::vector<float> k(kv_dim), v(kv_dim);
  uint32_t x = 12345;
  auto rnd = [&] {
    x = x * 1664525u + 1013904223u;
    return static_cast<float>(x >> 8) / 16777216.0f - 0.5f;
  };
  for (int32_t p = 0; p < n && p < n_ctx_; ++p) {  // layer 0 of a position first (KvCache::Write)
    for (int32_t l = 0; l < c.n_layers; ++l) {
      for (int64_t i = 0; i < kv_dim; ++i) {
        k[i] = rnd();
        v[i] = rnd();
      }
      if (kvq_) {
        kvq_->Write(l, seq, p, k.data(), v.data());
      } else {
        std::memcpy(KCache(l, seq) + p * kv_dim, k.data(), sizeof(float) * kv_dim);
        std::memcpy(VCache(l, seq) + p * kv_dim, v.data(), sizeof(float) * kv_dim);
      }
    }
  }
}

void LlamaGraph::UpdateLowBits(int32_t layer, int32_t n) {
  const int32_t H = model_.config.n_heads;
  // Running median of the sink attention (stochastic quantile tracking): about half of
  // the tokens fall below it and get 4-bit activations.
  double& thr = sink_ema_[layer];
  for (int32_t t = 0; t < n; ++t) {
    double s = 0;
    for (int32_t h = 0; h < H; ++h) s += sink_[t * H + h];
    s /= H;
    if (thr < 0) thr = s;
    low_bits_[t] = s < thr;
    thr += 0.01 * std::max(thr, 1e-3) * (s >= thr ? 1.0 : -1.0);
    lowbit_count_ += low_bits_[t];
    ++lowbit_total_;
  }
  mm_.low_bits = low_bits_.data();
}

const char* ForwardProfile::Name(int step) {
  static const char* const kNames[kSteps] = {"embed",    "attn_norm", "qkv",  "rope_kv", "attention", "wo",
                                             "ffn_norm", "gate_up",   "swiglu", "down",  "residual",  "head"};
  return step >= 0 && step < kSteps ? kNames[step] : "?";
}

namespace {
// Adds the wall time of its scope (and the bytes of the weights the step reads) to one
// step of a ForwardProfile; with no profile it reads no clock.
class StepTimer {
 public:
  StepTimer(ForwardProfile* p, ForwardProfile::Step step, std::initializer_list<const Tensor2D*> weights = {})
      : p_(p), step_(step) {
    if (p_ == nullptr) return;
    for (const Tensor2D* w : weights) p_->weight_bytes[step] += MatMulReadBytes(*w);
    t0_ = std::chrono::steady_clock::now();
  }
  ~StepTimer() {
    if (p_ != nullptr) p_->seconds[step_] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

 private:
  ForwardProfile* p_;
  ForwardProfile::Step step_;
  std::chrono::steady_clock::time_point t0_;
};

// Adds a whole forward pass (its wall time and tokens) to a ForwardProfile.
class PassTimer {
 public:
  PassTimer(ForwardProfile* p, int32_t n) : p_(p), n_(n) {
    if (p_ != nullptr) t0_ = std::chrono::steady_clock::now();
  }
  ~PassTimer() {
    if (p_ == nullptr) return;
    p_->total_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    p_->tokens += n_;
  }
  PassTimer(const PassTimer&) = delete;
  PassTimer& operator=(const PassTimer&) = delete;

 private:
  ForwardProfile* p_;
  int32_t n_;
  std::chrono::steady_clock::time_point t0_;
};
}  // namespace

// Runs fn(t) for every token of the chunk: on the pool when there are enough tokens to
// pay for a synchronisation (prefill), inline for decode.
template <typename F>
void LlamaGraph::ForTokens(int32_t n, F&& fn) {
  if (n < 4 || pool_.size() == 1) {
    for (int32_t t = 0; t < n; ++t) fn(t);
    return;
  }
  // A few tokens per claim: per-token work is short (a norm, a residual add), and every
  // claim is an atomic on a line both cores write.
  pool_.ParallelForDynamic(n, std::max<int64_t>(1, n / (8 * pool_.size())), [&](int, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) fn(static_cast<int32_t>(t));
  });
}

void LlamaGraph::ForwardChunk(int32_t n, float* logits) {
  const ModelConfig& c = model_.config;
  const ModelWeights& w = model_.weights;
  const int64_t D = c.dim, H = c.hidden_dim;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  using P = ForwardProfile;
  PassTimer pass(profile_, n);

  // Embeddings, and each token's RoPE cos/sin, which every layer reuses.
  {
    StepTimer st(profile_, P::kEmbed);
    ForTokens(n, [&](int32_t t) {
      GetRowF32(w.token_embd, batch_[t].token, x_ + t * D);
      RopeCosSin(rope_, batch_[t].pos, rope_cs_.data() + static_cast<int64_t>(t) * c.head_dim);
    });
  }
  mm_.low_bits = nullptr;  // the first layer's q/k/v always see 8-bit activations

  for (int32_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    const MatMulOut qkv[3] = {{&lw.wq, q_, q_dim}, {&lw.wk, k_, kv_dim}, {&lw.wv, v_, kv_dim}};
    // Fused activation quantization (ops.h RmsNormQuant / SwiGluQuant) where the next
    // matmul takes int8 input and nothing (a rotation) comes between.
    const bool fuse_qkv = fuse_ && !c.rotate_inputs && MatMulQuantizesInput(qkv, 3, n, mm_);
    QuantAct qa = MakeQuantAct(mm_.act, n, D);
    {
      StepTimer st(profile_, P::kAttnNorm);
      ForTokens(n, [&](int32_t t) {
        if (fuse_qkv) RmsNormQuant(x_ + t * D, lw.attn_norm, xb_ + t * D, D, c.rms_eps, &qa, t);
        else RmsNorm(x_ + t * D, lw.attn_norm, xb_ + t * D, D, c.rms_eps);
      });
    }
    // Observers (calibration statistics, GPTQ Hessians) see what the matmul reads:
    // the rotated input when the model rotates its matrix inputs.
    if (c.rotate_inputs) RotateRows(xb_, n, D);
    if (observer_) observer_->Observe(l, "attn_in", xb_, n, D);
    mm_.act_ready = fuse_qkv;
    {
      StepTimer st(profile_, P::kQkv, {&lw.wq, &lw.wk, &lw.wv});
      MatMulMulti(qkv, 3, xb_, D, n, mm_, pool_);
    }
    mm_.act_ready = false;
    // Per token: biases, QK-norm, RoPE, and the KV store. The fp32 cache writes each
    // token's own slots (the rotated key straight into its slot), so a prefill chunk's
    // tokens are split over the threads; the quantized cache's writes update shared state
    // (pools, importance, aging) and stay in token order on one thread.
    auto prepare = [&](int32_t t) {
      const int32_t pos = batch_[t].pos;
      float* q = q_ + t * q_dim;
      float* k = k_ + t * kv_dim;
      float* v = v_ + t * kv_dim;
      if (lw.bq != nullptr) {
        for (int64_t i = 0; i < q_dim; ++i) q[i] += lw.bq[i];
        for (int64_t i = 0; i < kv_dim; ++i) k[i] += lw.bk[i];
        for (int64_t i = 0; i < kv_dim; ++i) v[i] += lw.bv[i];
      }
      if (lw.q_norm != nullptr) {
        for (int32_t h = 0; h < c.n_heads; ++h) RmsNorm(q + h * c.head_dim, lw.q_norm, q + h * c.head_dim, c.head_dim, c.rms_eps);
        for (int32_t h = 0; h < c.n_kv_heads; ++h) RmsNorm(k + h * c.head_dim, lw.k_norm, k + h * c.head_dim, c.head_dim, c.rms_eps);
      }
      const float* cs = rope_cs_.data() + static_cast<int64_t>(t) * c.head_dim;
      if (kvq_) {
        ApplyRopeQKTable(rope_, cs, q, c.n_heads, k, k, c.n_kv_heads);
        if (kv_opts_.rotate) {  // spreads outlier channels before quantization (KvRotate)
          for (int32_t h = 0; h < c.n_heads; ++h) KvRotate(q + h * c.head_dim, c.head_dim);
          for (int32_t h = 0; h < c.n_kv_heads; ++h) {
            KvRotate(k + h * c.head_dim, c.head_dim);
            KvRotate(v + h * c.head_dim, c.head_dim);
          }
        }
        return;
      }
      // fp32 cache: the rotated key is written straight into its cache slot.
      ApplyRopeQKTable(rope_, cs, q, c.n_heads, k, KCache(l, batch_[t].seq) + static_cast<int64_t>(pos) * kv_dim,
                       c.n_kv_heads);
      std::memcpy(VCache(l, batch_[t].seq) + static_cast<int64_t>(pos) * kv_dim, v, sizeof(float) * kv_dim);
    };
    {
      StepTimer st(profile_, P::kRopeKv);
      if (kvq_) {
        for (int32_t t = 0; t < n; ++t) {
          prepare(t);
          if (!kvq_->key_channels()) kvq_->Write(l, batch_[t].seq, batch_[t].pos, k_ + t * kv_dim, v_ + t * kv_dim);
        }
      } else {
        ForTokens(n, prepare);
      }
    }
    std::optional<StepTimer> attention_timer(std::in_place, profile_, P::kAttention);
    if (kvq_ && kvq_->key_channels()) {
      // Key blocks: a token attends after the writes of its own block and before the
      // first write of the next one seals it (KvCache), so the chunk is cut where a
      // position starts a block: prefill then sees what decode sees.
      for (int32_t t0 = 0; t0 < n;) {
        int32_t t1 = t0 + 1;
        while (t1 < n && batch_[t1].pos % kKvTokenGroup != 0) ++t1;
        for (int32_t t = t0; t < t1; ++t) {
          kvq_->Write(l, batch_[t].seq, batch_[t].pos, k_ + t * kv_dim, v_ + t * kv_dim);
        }
        Attention(l, t0, t1);
        t0 = t1;
      }
    } else {
      Attention(l, 0, n);
    }
    if (kvq_ && kvq_->tracks_importance()) {
      // Fold this layer's attention into the importance of each sequence in the batch.
      for (int32_t t = 0; t < n; ++t) {
        const int32_t seq = batch_[t].seq;
        bool first = true;
        int32_t last = -1;
        for (int32_t u = 0; u < n; ++u) {
          if (batch_[u].seq != seq) continue;
          if (u < t) first = false;
          last = std::max(last, batch_[u].pos);
        }
        if (first) kvq_->CommitImportance(seq, last);
      }
    }
    if (adaptive_) UpdateLowBits(l, n);
    attention_timer.reset();
    if (c.rotate_inputs) RotateRows(attn_out_, n, q_dim);
    if (observer_) observer_->Observe(l, "attn_out", attn_out_, n, q_dim);
    {
      StepTimer st(profile_, P::kWo, {&lw.wo});
      MatMul(lw.wo, attn_out_, q_dim, n, xb_, D, mm_, pool_);
    }
    const MatMulOut gate_up[2] = {{&lw.w_gate, hb_, H}, {&lw.w_up, hb2_, H}};
    const bool fuse_ffn = fuse_ && !c.rotate_inputs && MatMulQuantizesInput(gate_up, 2, n, mm_);
    {
      StepTimer st(profile_, P::kFfnNorm);
      ForTokens(n, [&](int32_t t) {  // residual, then the FFN's norm, in one pass per token
        float* xt = x_ + t * D;
        float* bt = xb_ + t * D;
        AddInto(xt, bt, D);
        if (fuse_ffn) RmsNormQuant(xt, lw.ffn_norm, bt, D, c.rms_eps, &qa, t);
        else RmsNorm(xt, lw.ffn_norm, bt, D, c.rms_eps);
      });
    }
    if (c.rotate_inputs) RotateRows(xb_, n, D);
    if (observer_) observer_->Observe(l, "ffn_in", xb_, n, D);
    mm_.act_ready = fuse_ffn;
    {
      StepTimer st(profile_, P::kGateUp, {&lw.w_gate, &lw.w_up});
      MatMulMulti(gate_up, 2, xb_, D, n, mm_, pool_);
    }
    mm_.act_ready = false;
    const MatMulOut down{&lw.w_down, xb_, D};
    const bool fuse_down = fuse_ && !c.rotate_inputs && MatMulQuantizesInput(&down, 1, n, mm_);
    QuantAct ha = MakeQuantAct(mm_.act, n, H);
    {
      StepTimer st(profile_, P::kSwiGlu);
      ForTokens(n, [&](int32_t t) {
        if (fuse_down) SwiGluQuant(hb_ + t * H, hb2_ + t * H, H, &ha, t);
        else SwiGlu(hb_ + t * H, hb2_ + t * H, H);
      });
    }
    if (c.rotate_inputs) RotateRows(hb_, n, H);
    if (observer_) observer_->Observe(l, "ffn_mid", hb_, n, H);
    mm_.act_ready = fuse_down;
    {
      StepTimer st(profile_, P::kDown, {&lw.w_down});
      MatMul(lw.w_down, hb_, H, n, xb_, D, mm_, pool_);
    }
    mm_.act_ready = false;
    StepTimer st(profile_, P::kResidual);
    ForTokens(n, [&](int32_t t) { AddInto(x_ + t * D, xb_ + t * D, D); });
  }

  mm_.low_bits = nullptr;  // the classifier always sees 8-bit activations
  if (logits == nullptr) return;
  // Normalize the rows that want logits into consecutive rows of xb_.
  int32_t count = 0;
  for (int32_t t = 0; t < n; ++t) count += batch_[t].logits ? 1 : 0;
  if (count == 0) return;
  StepTimer head_timer(profile_, P::kHead, {&w.output});
  const MatMulOut head{&w.output, logits, c.vocab_size};
  const bool fuse_head = fuse_ && MatMulQuantizesInput(&head, 1, count, mm_);
  QuantAct oa = MakeQuantAct(mm_.act, count, D);
  count = 0;
  for (int32_t t = 0; t < n; ++t) {
    if (!batch_[t].logits) continue;
    if (fuse_head) RmsNormQuant(x_ + t * D, w.output_norm, xb_ + count * D, D, c.rms_eps, &oa, count);
    else RmsNorm(x_ + t * D, w.output_norm, xb_ + count * D, D, c.rms_eps);
    ++count;
  }
  if (observer_) observer_->Observe(-1, "output_in", xb_, count, D);
  mm_.act_ready = fuse_head;
  MatMul(w.output, xb_, D, count, logits, c.vocab_size, mm_, pool_);
  mm_.act_ready = false;
}

}  // namespace edgeq
