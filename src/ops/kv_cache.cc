#include "ops/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace edgeq {

namespace {
int32_t RotBlock(int32_t hd) { return std::min(hd & -hd, 128); }
inline float Sign(int32_t i) { return ((static_cast<uint32_t>(i) * 0x9E3779B1u) >> 31) ? -1.0f : 1.0f; }
void Fwht(float* x, int32_t b) {
  for (int32_t len = 1; len < b; len <<= 1) {
    for (int32_t i = 0; i < b; i += 2 * len) {
      for (int32_t j = i; j < i + len; ++j) {
        const float a = x[j], c = x[j + len];
        x[j] = a + c;
        x[j + len] = a - c;
      }
    }
  }
}
}  // namespace

void KvRotate(float* x, int32_t hd) {
  const int32_t b = RotBlock(hd);
  const float norm = 1.0f / std::sqrt(static_cast<float>(b));
  for (int32_t i = 0; i < hd; ++i) x[i] *= Sign(i) * norm;
  for (int32_t o = 0; o < hd; o += b) Fwht(x + o, b);
}

void KvUnrotate(float* x, int32_t hd) {
  const int32_t b = RotBlock(hd);
  const float norm = 1.0f / std::sqrt(static_cast<float>(b));
  for (int32_t o = 0; o < hd; o += b) Fwht(x + o, b);
  for (int32_t i = 0; i < hd; ++i) x[i] *= Sign(i) * norm;
}

Status ParseKvOptions(const std::string& type, const std::string& policy, int32_t window, int32_t sinks,
                      KvCacheOptions* out, bool rotate) {
  KvCacheOptions o;
  if (type == "adaptive") {
    o.adaptive = true;
    o.type = KvType::kQ8;
  } else if (!ParseKvType(type.c_str(), &o.type)) {
    return InvalidArgument("unknown --kv-type '" + type + "' (f32, f16, q8, q4, q2, adaptive)");
  }
  if (policy == "sink-window") {
    o.policy = KvPolicy::kSinkWindow;
  } else if (policy == "squat") {
    o.policy = KvPolicy::kSquat;
  } else {
    return InvalidArgument("unknown --kv-policy '" + policy + "' (sink-window, squat)");
  }
  if (window < 1) return InvalidArgument("--kv-window must be at least 1");
  if (sinks < 0) return InvalidArgument("--kv-sinks must not be negative");
  o.window = window;
  o.sinks = sinks;
  o.rotate = rotate && (o.adaptive || o.type != KvType::kF32);
  *out = o;
  return Status::Ok();
}

std::string KvOptionsName(const KvCacheOptions& o) {
  const std::string rot = o.rotate ? "+rot" : "";
  if (!o.adaptive) return KvTypeName(o.type) + rot;
  return std::string("adaptive/") + (o.policy == KvPolicy::kSquat ? "squat" : "sink-window") + rot + " w" +
         std::to_string(o.window) + " s" + std::to_string(o.sinks);
}

Result<std::unique_ptr<KvCache>> KvCache::Create(int32_t n_layers, int32_t n_seq, int32_t n_ctx, int32_t kv_dim,
                                                 int32_t n_threads, const KvCacheOptions& o) {
  std::unique_ptr<KvCache> c(new KvCache());
  c->o_ = o;
  c->n_layers_ = n_layers;
  c->n_seq_ = n_seq;
  c->n_ctx_ = n_ctx;
  c->dim_ = kv_dim;
  c->n_threads_ = std::max(1, n_threads);
  c->plane_ = KvPlaneBytes(kv_dim);
  const int64_t ls = static_cast<int64_t>(n_layers) * n_seq;
  try {
    if (!o.adaptive) {
      c->row_ = KvRowBytes(o.type, kv_dim);
      c->k_.assign(ls * n_ctx * c->row_, 0);
      c->v_.assign(ls * n_ctx * c->row_, 0);
      c->bytes_ = c->k_.size() + c->v_.size();
      return c;
    }
    c->n_hi_ = std::min(n_ctx, o.sinks + o.window);
    const int32_t can_age = std::max(0, n_ctx - o.sinks - o.window);
    c->cap_ = o.policy == KvPolicy::kSquat ? (can_age + 1) / 2 : can_age;
    c->hi_row_ = KvRowBytes(KvType::kQ8, kv_dim);
    c->low_row_ = KvRowBytes(KvType::kQ2, kv_dim);
    c->hi_k_.assign(ls * c->n_hi_ * c->hi_row_, 0);
    c->hi_v_.assign(ls * c->n_hi_ * c->hi_row_, 0);
    c->low_k_.assign(ls * n_ctx * c->low_row_, 0);
    c->low_v_.assign(ls * n_ctx * c->low_row_, 0);
    c->pool_k_.assign(ls * c->cap_ * c->plane_, 0);
    c->pool_v_.assign(ls * c->cap_ * c->plane_, 0);
    c->lo_slot_.assign(static_cast<int64_t>(n_seq) * n_ctx, kNoLo);
    c->owner_.assign(static_cast<int64_t>(n_seq) * c->n_hi_, -1);
    c->row_pos_.assign(ls * c->n_hi_, -1);
    c->free_.assign(static_cast<int64_t>(n_seq) * c->cap_, 0);
    c->n_free_.assign(n_seq, 0);
    c->last_query_.assign(n_seq, -1);
    if (c->tracks_importance()) {
      c->imp_.assign(static_cast<int64_t>(n_seq) * n_ctx, 0.0f);
      c->imp_tmp_.assign(static_cast<int64_t>(c->n_threads_) * n_seq * n_ctx, 0.0f);
    }
    c->cand_.reserve(c->cap_);
    c->tmp_k_.resize(kv_dim);
    c->tmp_v_.resize(kv_dim);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("cannot allocate the " + KvOptionsName(o) + " KV cache for context " +
                             std::to_string(n_ctx) + " x " + std::to_string(n_seq) + " sequence(s)");
  }
  for (int32_t s = 0; s < n_seq; ++s) c->ResetSeq(s);
  c->bytes_ = c->hi_k_.size() + c->hi_v_.size() + c->low_k_.size() + c->low_v_.size() + c->pool_k_.size() +
              c->pool_v_.size() +
              sizeof(int32_t) * (c->lo_slot_.size() + c->owner_.size() + c->row_pos_.size() + c->free_.size() + c->n_free_.size() +
                                 c->last_query_.size()) +
              sizeof(float) * (c->imp_.size() + c->imp_tmp_.size() + c->tmp_k_.size() + c->tmp_v_.size()) +
              sizeof(std::pair<float, int32_t>) * c->cand_.capacity();
  return c;
}

void KvCache::ResetSeq(int32_t seq) {
  for (int32_t l = 0; l < n_layers_; ++l) std::fill_n(row_pos_.begin() + Idx(l, seq) * n_hi_, n_hi_, -1);
  std::fill_n(owner_.begin() + static_cast<int64_t>(seq) * n_hi_, n_hi_, -1);
  std::fill_n(lo_slot_.begin() + static_cast<int64_t>(seq) * n_ctx_, n_ctx_, kNoLo);
  int32_t* fr = free_.data() + static_cast<int64_t>(seq) * cap_;
  for (int32_t i = 0; i < cap_; ++i) fr[i] = cap_ - 1 - i;  // pops 0, 1, 2, ...
  n_free_[seq] = cap_;
  last_query_[seq] = -1;
  if (!imp_.empty()) std::fill_n(imp_.begin() + static_cast<int64_t>(seq) * n_ctx_, n_ctx_, 0.0f);
}

void KvCache::Write(int32_t l, int32_t seq, int32_t pos, const float* k, const float* v) {
  if (!o_.adaptive) {
    const int64_t at = (Idx(l, seq) * n_ctx_ + pos) * row_;
    KvQuantizeRow(o_.type, k, dim_, k_.data() + at);
    KvQuantizeRow(o_.type, v, dim_, v_.data() + at);
    return;
  }
  const int32_t hs = HiSlot(pos);
  int32_t* slot_of = lo_slot_.data() + static_cast<int64_t>(seq) * n_ctx_;
  if (l == 0) {  // the per-sequence decisions, for all layers
    if (pos == 0) ResetSeq(seq);
    int32_t& owner = owner_[static_cast<int64_t>(seq) * n_hi_ + hs];
    if (owner >= 0 && owner != pos && slot_of[owner] == kInRing) {
      const int32_t s = TakeVictimSlot(seq);
      slot_of[owner] = s >= 0 ? s : kNoLo;
    }
    if (slot_of[pos] >= 0) {  // rewritten after a rewind
      free_[static_cast<int64_t>(seq) * cap_ + n_free_[seq]++] = slot_of[pos];
    }
    owner = pos;
    slot_of[pos] = kInRing;
    if (!imp_.empty()) imp_[static_cast<int64_t>(seq) * n_ctx_ + pos] = 0.0f;
  }
  // This layer's ring row may still hold a token that layer 0 has sent to the low store
  // (in this chunk or before): re-quantize it now, before the row is overwritten.
  const int64_t idx = Idx(l, seq);
  int32_t& held = row_pos_[idx * n_hi_ + hs];
  if (held >= 0 && held != pos && slot_of[held] != kInRing) Age(l, seq, held, hs, slot_of[held]);
  held = pos;
  KvQuantizeRow(KvType::kQ8, k, dim_, hi_k_.data() + (idx * n_hi_ + hs) * hi_row_);
  KvQuantizeRow(KvType::kQ8, v, dim_, hi_v_.data() + (idx * n_hi_ + hs) * hi_row_);
}

// A pool slot for a newly aged token, or -1 (it goes to 2 bits). When the pool is empty
// (squat), the least-attended eighth of the current 4-bit tokens lose their lo planes in
// every layer at once (one O(n_ctx) scan per cap/8 agings, not per aging).
int32_t KvCache::TakeVictimSlot(int32_t seq) {
  const int64_t sq = seq;
  if (n_free_[seq] > 0) return free_[sq * cap_ + --n_free_[seq]];
  if (!tracks_importance() || cap_ == 0) return -1;
  const int32_t lq = last_query_[seq];
  const float* imp = imp_.data() + sq * n_ctx_;
  int32_t* slot_of = lo_slot_.data() + sq * n_ctx_;
  // Mean attention received per query that could see the token; tokens no query has
  // seen yet (written in the chunk being evaluated) are not candidates.
  cand_.clear();
  for (int32_t p = o_.sinks; p < n_ctx_; ++p) {
    if (slot_of[p] < 0 || p > lq) continue;
    cand_.push_back({imp[p] / static_cast<float>(lq - p + 1), p});
  }
  if (cand_.empty()) return -1;
  const size_t k = std::max<size_t>(1, std::min(cand_.size(), static_cast<size_t>(cap_ / 8)));
  std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end());
  for (size_t i = 0; i < k; ++i) {
    const int32_t victim = cand_[i].second;
    for (int32_t l = 0; l < n_layers_; ++l) {
      KvDropLoPlane(low_k_.data() + (Idx(l, seq) * n_ctx_ + victim) * low_row_, dim_);
      KvDropLoPlane(low_v_.data() + (Idx(l, seq) * n_ctx_ + victim) * low_row_, dim_);
    }
    free_[sq * cap_ + n_free_[seq]++] = slot_of[victim];
    slot_of[victim] = kNoLo;
  }
  return free_[sq * cap_ + --n_free_[seq]];
}

void KvCache::Age(int32_t l, int32_t seq, int32_t pos, int32_t hs, int32_t s) {
  const int64_t idx = Idx(l, seq);
  KvDequantizeRow(KvKernel::kQ8, hi_k_.data() + (idx * n_hi_ + hs) * hi_row_, nullptr, dim_, tmp_k_.data());
  KvDequantizeRow(KvKernel::kQ8, hi_v_.data() + (idx * n_hi_ + hs) * hi_row_, nullptr, dim_, tmp_v_.data());
  uint8_t* rk = low_k_.data() + (idx * n_ctx_ + pos) * low_row_;
  uint8_t* rv = low_v_.data() + (idx * n_ctx_ + pos) * low_row_;
  if (s >= 0) {
    KvQuantizeRowPlanes(tmp_k_.data(), dim_, 4, rk, pool_k_.data() + (idx * cap_ + s) * plane_);
    KvQuantizeRowPlanes(tmp_v_.data(), dim_, 4, rv, pool_v_.data() + (idx * cap_ + s) * plane_);
  } else {
    KvQuantizeRowPlanes(tmp_k_.data(), dim_, 2, rk, nullptr);
    KvQuantizeRowPlanes(tmp_v_.data(), dim_, 2, rv, nullptr);
  }
}

void KvCache::CommitImportance(int32_t seq, int32_t len, int32_t last_query_pos) {
  float* imp = imp_.data() + static_cast<int64_t>(seq) * n_ctx_;
  for (int t = 0; t < n_threads_; ++t) {
    float* acc = ImportanceScratch(t, seq);
    for (int32_t p = 0; p < len; ++p) imp[p] += acc[p];
    std::fill_n(acc, len, 0.0f);
  }
  last_query_[seq] = std::max(last_query_[seq], last_query_pos);
}

void KvCache::CountPrecisions(int32_t /*l: one decision for all layers*/, int32_t seq, int32_t len, int64_t counts[3]) const {
  if (!o_.adaptive) {
    const int i = o_.type == KvType::kQ2 ? 0 : o_.type == KvType::kQ4 ? 1 : 2;
    counts[i] += len;
    return;
  }
  const int32_t* slot = lo_slot_.data() + static_cast<int64_t>(seq) * n_ctx_;
  for (int32_t p = 0; p < len; ++p) {
    if (p < o_.sinks || slot[p] == kInRing) {
      ++counts[2];
    } else {
      ++counts[slot[p] >= 0 ? 1 : 0];
    }
  }
}

}  // namespace edgeq
