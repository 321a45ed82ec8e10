#include "ops/kv_cache.h"

#include "core/fp16.h"

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
                      KvCacheOptions* out, bool rotate, const std::string& key_layout) {
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
  if (key_layout == "channel") {
    o.key_channels = o.adaptive || o.type == KvType::kQ8 || o.type == KvType::kQ4 || o.type == KvType::kQ2;
  } else if (key_layout != "token") {
    return InvalidArgument("unknown --kv-key-layout '" + key_layout + "' (token, channel)");
  }
  *out = o;
  return Status::Ok();
}

std::string KvOptionsName(const KvCacheOptions& o) {
  const std::string rot = o.rotate ? "+rot" : "";
  const std::string kc = o.key_channels ? "+kc" : "";
  if (!o.adaptive) return KvTypeName(o.type) + kc + rot;
  return std::string("adaptive/") + (o.policy == KvPolicy::kSquat ? "squat" : "sink-window") + kc + rot + " w" +
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
  const int32_t G = kKvTokenGroup;
  c->key_ch_ = o.key_channels;
  try {
    if (c->key_ch_) {
      c->nb_ = (n_ctx + G - 1) / G;
      // The last block (the one holding position n_ctx - 1) is never sealed: it stays the
      // residual, so only the blocks before it have quantized storage.
      const int32_t sealable = (n_ctx - 1) / G;
      c->n_sink_blk_ = o.adaptive ? std::min(c->nb_, (o.sinks + G - 1) / G) : 0;
      if (o.adaptive) {
        const int32_t can = std::max(0, sealable - c->n_sink_blk_);
        c->kcap_ = o.policy == KvPolicy::kSquat ? (can + 1) / 2 : can;
      }
      c->kper_ = c->BlockOffset(sealable);
      c->kblk_.assign(ls * c->kper_, 0);
      c->kpool_.assign(ls * c->kcap_ * G * c->plane_, 0);
      c->kres_.assign(ls * G * kv_dim, 0);
      c->kres_blk_.assign(ls, 0);
      if (o.adaptive) {
        c->kused_.assign(ls * c->nb_, -1);
        c->kslot_.assign(static_cast<int64_t>(n_seq) * c->nb_, -1);
        c->kfree_.assign(static_cast<int64_t>(n_seq) * c->kcap_, 0);
        c->kn_free_.assign(n_seq, 0);
      }
      c->ktmp_.resize(kv_dim);
    }
    const uint64_t key_bytes =
        c->kblk_.size() + c->kpool_.size() + sizeof(uint16_t) * c->kres_.size() +
        sizeof(int32_t) * (c->kres_blk_.size() + c->kused_.size() + c->kslot_.size() + c->kfree_.size() +
                           c->kn_free_.size()) +
        sizeof(float) * c->ktmp_.size();
    if (!o.adaptive) {
      c->row_ = KvRowBytes(o.type, kv_dim);
      if (!c->key_ch_) c->k_.assign(ls * n_ctx * c->row_, 0);
      c->v_.assign(ls * n_ctx * c->row_, 0);
      c->bytes_ = c->k_.size() + c->v_.size() + key_bytes;
      return c;
    }
    c->n_hi_ = std::min(n_ctx, o.sinks + o.window);
    // Only positions [sinks, n_ctx - window) ever age out of the ring: the low store has
    // a row for each of those (row pos - sinks) and for nothing else.
    const int32_t can_age = std::max(0, n_ctx - o.sinks - o.window);
    c->n_low_ = can_age;
    c->cap_ = o.policy == KvPolicy::kSquat ? (can_age + 1) / 2 : can_age;
    c->hi_row_ = KvRowBytes(KvType::kQ8, kv_dim);
    c->low_row_ = KvRowBytes(KvType::kQ2, kv_dim);
    if (!c->key_ch_) {
      c->hi_k_.assign(ls * c->n_hi_ * c->hi_row_, 0);
      c->low_k_.assign(ls * c->n_low_ * c->low_row_, 0);
      c->pool_k_.assign(ls * c->cap_ * c->plane_, 0);
    }
    c->hi_v_.assign(ls * c->n_hi_ * c->hi_row_, 0);
    c->low_v_.assign(ls * c->n_low_ * c->low_row_, 0);
    c->pool_v_.assign(ls * c->cap_ * c->plane_, 0);
    c->lo_slot_.assign(static_cast<int64_t>(n_seq) * n_ctx, kNoLo);
    c->owner_.assign(static_cast<int64_t>(n_seq) * c->n_hi_, -1);
    c->row_pos_.assign(ls * c->n_hi_, -1);
    c->free_.assign(static_cast<int64_t>(n_seq) * c->cap_, 0);
    c->n_free_.assign(n_seq, 0);
    c->last_query_.assign(n_seq, -1);
    if (c->tracks_importance()) {
      c->imp_.assign(static_cast<int64_t>(c->n_threads_) * n_seq * n_ctx, 0.0f);
    }
    c->cand_.reserve(std::max(VictimCount(c->cap_), VictimCount(c->kcap_)));
    c->tmp_k_.resize(kv_dim);
    c->tmp_v_.resize(kv_dim);
    c->bytes_ = key_bytes;
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("cannot allocate the " + KvOptionsName(o) + " KV cache for context " +
                             std::to_string(n_ctx) + " x " + std::to_string(n_seq) + " sequence(s)");
  }
  for (int32_t s = 0; s < n_seq; ++s) c->ResetSeq(s);
  c->bytes_ += c->hi_k_.size() + c->hi_v_.size() + c->low_k_.size() + c->low_v_.size() + c->pool_k_.size() +
              c->pool_v_.size() +
              sizeof(int32_t) * (c->lo_slot_.size() + c->owner_.size() + c->row_pos_.size() + c->free_.size() + c->n_free_.size() +
                                 c->last_query_.size()) +
              sizeof(float) * (c->imp_.size() + c->tmp_k_.size() + c->tmp_v_.size()) +
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
  if (!imp_.empty()) {
    for (int t = 0; t < n_threads_; ++t) std::fill_n(ImportanceScratch(t, seq), n_ctx_, 0.0f);
  }
  if (key_ch_) {
    std::fill_n(kslot_.begin() + static_cast<int64_t>(seq) * nb_, nb_, -1);
    int32_t* kf = kfree_.data() + static_cast<int64_t>(seq) * kcap_;
    for (int32_t i = 0; i < kcap_; ++i) kf[i] = kcap_ - 1 - i;
    kn_free_[seq] = kcap_;
  }
}

void KvCache::Write(int32_t l, int32_t seq, int32_t pos, const float* k, const float* v) {
  if (o_.adaptive && l == 0 && pos > 0) {  // a rewind: later positions are stale
    last_query_[seq] = std::min(last_query_[seq], pos - 1);
  }
  if (key_ch_) WriteKey(l, seq, pos, k);
  if (!o_.adaptive) {
    const int64_t at = (Idx(l, seq) * n_ctx_ + pos) * row_;
    if (!key_ch_) KvQuantizeRow(o_.type, k, dim_, k_.data() + at);
    KvQuantizeRow(o_.type, v, dim_, v_.data() + at);
    return;
  }
  const int32_t hs = HiSlot(pos);
  int32_t* slot_of = lo_slot_.data() + static_cast<int64_t>(seq) * n_ctx_;
  if (l == 0) {  // the per-sequence decisions, for all layers
    if (pos == 0) ResetSeq(seq);
    int32_t& owner = owner_[static_cast<int64_t>(seq) * n_hi_ + hs];
    if (owner > pos) {  // stale after a rewind: it is rewritten before anything reads it
      if (slot_of[owner] == kInRing) slot_of[owner] = kNoLo;
    } else if (owner >= 0 && owner != pos && slot_of[owner] == kInRing) {
      const int32_t s = TakeVictimSlot(seq);
      slot_of[owner] = s >= 0 ? s : kNoLo;
    }
    if (slot_of[pos] >= 0) {  // rewritten after a rewind
      free_[static_cast<int64_t>(seq) * cap_ + n_free_[seq]++] = slot_of[pos];
    }
    owner = pos;
    slot_of[pos] = kInRing;
    if (!imp_.empty()) {
      for (int t = 0; t < n_threads_; ++t) ImportanceScratch(t, seq)[pos] = 0.0f;
    }
  }
  // This layer's ring row may still hold a token that layer 0 has sent to the low store
  // (in this chunk or before): re-quantize it now, before the row is overwritten.
  const int64_t idx = Idx(l, seq);
  int32_t& held = row_pos_[idx * n_hi_ + hs];
  // (A stale position after a rewind, held > pos, is not aged: only positions below
  // n_ctx - window have low-store rows, and it will be rewritten first.)
  if (held >= 0 && held < pos && slot_of[held] != kInRing) Age(l, seq, held, hs, slot_of[held]);
  held = pos;
  if (!key_ch_) KvQuantizeRow(KvType::kQ8, k, dim_, hi_k_.data() + (idx * n_hi_ + hs) * hi_row_);
  KvQuantizeRow(KvType::kQ8, v, dim_, hi_v_.data() + (idx * n_hi_ + hs) * hi_row_);
}

// squat's victim rule, one for tokens and key blocks: the least-attended eighth of a
// pool of `cap` slots (at least one). cand_ keeps the VictimCount(cap) lowest (mean
// attention, id) pairs offered so far as a max-heap, so its capacity is an eighth of the
// pool, not the whole pool.
void KvCache::OfferVictim(float mean_attention, int32_t id, size_t k) {
  const std::pair<float, int32_t> c{mean_attention, id};
  if (cand_.size() < k) {
    cand_.push_back(c);
    std::push_heap(cand_.begin(), cand_.end());
  } else if (c < cand_.front()) {
    std::pop_heap(cand_.begin(), cand_.end());
    cand_.back() = c;
    std::push_heap(cand_.begin(), cand_.end());
  }
}

// A pool slot for a newly aged token, or -1 (it goes to 2 bits). When the pool is empty
// (squat), the least-attended eighth of the current 4-bit tokens lose their lo planes in
// every layer at once (one O(n_ctx) scan per cap/8 agings, not per aging).
int32_t KvCache::TakeVictimSlot(int32_t seq) {
  const int64_t sq = seq;
  if (n_free_[seq] > 0) return free_[sq * cap_ + --n_free_[seq]];
  if (!tracks_importance() || cap_ == 0) return -1;
  const int32_t lq = last_query_[seq];
  int32_t* slot_of = lo_slot_.data() + sq * n_ctx_;
  // Mean attention received per query that could see the token; tokens no query has
  // seen yet (written in the chunk being evaluated) are not candidates.
  cand_.clear();
  const size_t k = VictimCount(cap_);
  for (int32_t p = o_.sinks; p < n_ctx_; ++p) {
    if (slot_of[p] < 0 || p > lq) continue;
    OfferVictim(Importance(seq, p) / static_cast<float>(lq - p + 1), p, k);
  }
  if (cand_.empty()) return -1;
  for (size_t i = 0; i < cand_.size(); ++i) {
    const int32_t victim = cand_[i].second;
    for (int32_t l = 0; l < n_layers_; ++l) {
      if (!key_ch_) KvDropLoPlane(low_k_.data() + LowOffset(Idx(l, seq), victim), dim_);
      KvDropLoPlane(low_v_.data() + LowOffset(Idx(l, seq), victim), dim_);
    }
    free_[sq * cap_ + n_free_[seq]++] = slot_of[victim];
    slot_of[victim] = kNoLo;
  }
  return free_[sq * cap_ + --n_free_[seq]];
}

void KvCache::Age(int32_t l, int32_t seq, int32_t pos, int32_t hs, int32_t s) {
  const int64_t idx = Idx(l, seq);
  KvDequantizeRow(KvKernel::kQ8, hi_v_.data() + (idx * n_hi_ + hs) * hi_row_, nullptr, dim_, tmp_v_.data());
  uint8_t* rv = low_v_.data() + LowOffset(idx, pos);
  if (key_ch_) {
    if (s >= 0) {
      KvQuantizeRowPlanes(tmp_v_.data(), dim_, 4, rv, pool_v_.data() + (idx * cap_ + s) * plane_);
    } else {
      KvQuantizeRowPlanes(tmp_v_.data(), dim_, 2, rv, nullptr);
    }
    return;
  }
  KvDequantizeRow(KvKernel::kQ8, hi_k_.data() + (idx * n_hi_ + hs) * hi_row_, nullptr, dim_, tmp_k_.data());
  uint8_t* rk = low_k_.data() + LowOffset(idx, pos);
  if (s >= 0) {
    KvQuantizeRowPlanes(tmp_k_.data(), dim_, 4, rk, pool_k_.data() + (idx * cap_ + s) * plane_);
    KvQuantizeRowPlanes(tmp_v_.data(), dim_, 4, rv, pool_v_.data() + (idx * cap_ + s) * plane_);
  } else {
    KvQuantizeRowPlanes(tmp_k_.data(), dim_, 2, rk, nullptr);
    KvQuantizeRowPlanes(tmp_v_.data(), dim_, 2, rv, nullptr);
  }
}

// ---- Key blocks (channel layout) ----

int KvCache::BlockBits(int32_t b, int32_t slot) const {
  if (!o_.adaptive) return o_.type == KvType::kQ8 ? 8 : o_.type == KvType::kQ4 ? 4 : 2;
  return b < n_sink_blk_ ? 8 : slot >= 0 ? 4 : 2;
}

// Block b's offset in a (layer, seq)'s store: params (4 dim) + G code rows, and for
// uniform q4 the block's G lo planes right after; adaptive 8-bit sink blocks first.
int64_t KvCache::BlockOffset(int32_t b) const {
  const int64_t G = kKvTokenGroup, P = KvKeyBlockParamBytes(dim_);
  if (o_.adaptive) {
    const int32_t s = std::min(b, n_sink_blk_);
    return s * (P + G * dim_) + static_cast<int64_t>(b - s) * (P + G * plane_);
  }
  const int64_t crow = o_.type == KvType::kQ8 ? dim_ : plane_;
  return b * (P + G * crow + (o_.type == KvType::kQ4 ? G * plane_ : 0));
}

uint8_t* KvCache::BlockLo(int64_t idx, int32_t b, int32_t slot) {
  const int64_t G = kKvTokenGroup;
  if (!o_.adaptive) {
    if (o_.type != KvType::kQ4) return nullptr;
    return kblk_.data() + idx * kper_ + BlockOffset(b) + KvKeyBlockParamBytes(dim_) + G * plane_;
  }
  if (b < n_sink_blk_ || slot < 0) return nullptr;
  return kpool_.data() + (idx * kcap_ + slot) * G * plane_;
}

KvSpan KvCache::KeySpan(int32_t l, int32_t seq, int32_t p, int32_t n) const {
  const int64_t idx = Idx(l, seq);
  const int32_t b = p / kKvTokenGroup, r = p % kKvTokenGroup;
  KvSpan ks;
  ks.dim = dim_;
  ks.n = n;
  if (b == kres_blk_[idx]) {  // the block being filled: fp16 rows
    ks.kind = KvKernel::kF16;
    ks.rows = reinterpret_cast<const uint8_t*>(kres_.data() + (idx * kKvTokenGroup + r) * dim_);
    ks.stride = 2 * static_cast<int64_t>(dim_);
    return ks;
  }
  const int32_t slot = o_.adaptive ? kused_[idx * nb_ + b] : -1;
  const int bits = BlockBits(b, slot);
  const int64_t crow = bits == 8 ? dim_ : plane_;
  ks.params = kblk_.data() + idx * kper_ + BlockOffset(b);
  ks.kind = bits == 8 ? KvKernel::kQ8 : KvKernel::kQ2p;
  ks.rows = ks.params + KvKeyBlockParamBytes(dim_) + r * crow;
  ks.stride = crow;
  if (bits == 4) {
    const uint8_t* lo = const_cast<KvCache*>(this)->BlockLo(idx, b, slot);
    ks.lo = lo + r * plane_;
    ks.lo_stride = plane_;
  }
  return ks;
}

void KvCache::WriteKey(int32_t l, int32_t seq, int32_t pos, const float* k) {
  const int64_t idx = Idx(l, seq);
  const int32_t G = kKvTokenGroup;
  const int32_t b = pos / G, r = pos % G;
  int32_t& rb = kres_blk_[idx];
  uint16_t* res = kres_.data() + idx * G * dim_;
  if (pos == 0) {
    rb = 0;
  } else if (b > rb) {  // the residual's block is complete: quantize it in place
    SealKeyBlock(l, seq, rb);
    rb = b;
  } else if (b < rb) {  // a rewind into a quantized block: its earlier rows back to fp16
    if (o_.adaptive && l == 0) {
      int32_t* ks = kslot_.data() + static_cast<int64_t>(seq) * nb_;
      for (int32_t bb = b; bb < nb_; ++bb) {
        if (ks[bb] >= 0) kfree_[static_cast<int64_t>(seq) * kcap_ + kn_free_[seq]++] = ks[bb];
        ks[bb] = -1;
      }
    }
    const int32_t slot = o_.adaptive ? kused_[idx * nb_ + b] : -1;
    const int bits = BlockBits(b, slot);
    const int64_t crow = bits == 8 ? dim_ : plane_;
    const uint8_t* params = kblk_.data() + idx * kper_ + BlockOffset(b);
    const uint8_t* lo = bits == 4 ? BlockLo(idx, b, slot) : nullptr;
    for (int32_t i = 0; i < r; ++i) {
      KvDequantizeKeyRow(params, params + KvKeyBlockParamBytes(dim_) + i * crow, lo ? lo + i * plane_ : nullptr,
                         bits, dim_, ktmp_.data());
      for (int32_t e = 0; e < dim_; ++e) res[static_cast<int64_t>(i) * dim_ + e] = Fp32ToFp16(ktmp_[e]);
    }
    rb = b;
  }
  for (int32_t e = 0; e < dim_; ++e) res[static_cast<int64_t>(r) * dim_ + e] = Fp32ToFp16(k[e]);
}

void KvCache::SealKeyBlock(int32_t l, int32_t seq, int32_t b) {
  const int64_t idx = Idx(l, seq);
  const int32_t G = kKvTokenGroup;
  int32_t slot = -1;
  if (o_.adaptive && b >= n_sink_blk_) {
    int32_t& dec = kslot_[static_cast<int64_t>(seq) * nb_ + b];
    if (l == 0) dec = TakeKeySlot(seq);
    slot = dec;
  }
  if (o_.adaptive) kused_[idx * nb_ + b] = slot;
  const int bits = BlockBits(b, slot);
  uint8_t* params = kblk_.data() + idx * kper_ + BlockOffset(b);
  KvQuantizeKeyBlockF16(kres_.data() + idx * G * dim_, G, dim_, bits, params, params + KvKeyBlockParamBytes(dim_),
                        bits == 4 ? BlockLo(idx, b, slot) : nullptr);
}

// A lo-plane set for a newly quantized key block, or -1 (2-bit). squat, pool empty: the
// least-attended eighth of the 4-bit blocks that every layer has quantized (a query at or
// after the next block's first position has run through all layers) drop their planes.
int32_t KvCache::TakeKeySlot(int32_t seq) {
  const int64_t sq = seq;
  const int32_t G = kKvTokenGroup;
  if (kn_free_[seq] > 0) return kfree_[sq * kcap_ + --kn_free_[seq]];
  if (!tracks_importance() || kcap_ == 0) return -1;
  const int32_t lq = last_query_[seq];
  int32_t* ks = kslot_.data() + sq * nb_;
  cand_.clear();
  const size_t k = VictimCount(kcap_);
  for (int32_t b = n_sink_blk_; b < nb_; ++b) {
    if (ks[b] < 0 || (b + 1) * G > lq) continue;
    double a = 0, q = 0;
    for (int32_t p = b * G; p < (b + 1) * G; ++p) {
      a += Importance(seq, p);
      q += lq - p + 1;
    }
    OfferVictim(static_cast<float>(a / q), b, k);
  }
  if (cand_.empty()) return -1;
  for (size_t i = 0; i < cand_.size(); ++i) {
    const int32_t victim = cand_[i].second;
    for (int32_t l = 0; l < n_layers_; ++l) {
      KvDropKeyBlockLoPlanes(kblk_.data() + Idx(l, seq) * kper_ + BlockOffset(victim), dim_);
      kused_[Idx(l, seq) * nb_ + victim] = -1;
    }
    kfree_[sq * kcap_ + kn_free_[seq]++] = ks[victim];
    ks[victim] = -1;
  }
  return kfree_[sq * kcap_ + --kn_free_[seq]];
}

void KvCache::CommitImportance(int32_t seq, int32_t last_query_pos) {
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
