// The KV cache of a LlamaGraph in a quantized or token-adaptive format (kernels/kv.h has
// the row layouts). The fp32 cache stays in LlamaGraph itself (its exact path); this class
// serves every other --kv-type.
//
// Uniform types (f16, q8, q4, q2): one row per (layer, sequence, position).
//
// Adaptive (--kv-type adaptive): per (layer, sequence)
//   hi store  sinks + window rows in q8: positions < sinks in slots 0..sinks-1 for good;
//             later positions in a ring of `window` slots (slot = sinks + (pos-sinks) % window)
//   low store one q2p row (group params + 2-bit hi plane) per position that can age
//             (sinks <= pos < n_ctx - window; row pos - sinks), and a pool of lo
//             planes (2 more bits each) handed to some of them: with a lo plane a token is
//             4-bit, without it 2-bit
// When a new token needs a ring slot, the token in it ages out: its q8 rows are
// re-quantized in place into its low-store row (4-bit when it gets a lo plane). A token's
// precision is one decision for all layers (the bookkeeping is per sequence, not per
// layer: 8 bytes per position), taken when layer 0 writes; Write() must therefore see
// layer 0 of a position before the other layers, and every layer must see the positions in
// the same order (the forward pass does). Each layer re-quantizes its own ring row when it
// next writes that slot, so a prefill chunk longer than the window is handled. Policies:
//   sink-window  every aged token is 4-bit (the pool has a plane for each)
//   squat        the pool holds planes for half of the positions that can age
//                ((n_ctx - sinks - window + 1) / 2); an aged token takes a free plane (it
//                is 4-bit); when none is free, the eighth of the 4-bit tokens with the
//                lowest mean attention received so far (attention accumulated over all
//                layers, heads and queries / the queries that could see it) lose their lo planes
//                at once (a free, in-place 4 -> 2 bit step: kernels/kv.h). At full context
//                about half of the aged tokens, the least attended, are 2-bit.
// Nothing is ever copied apart from the one row that ages.
//
// Key layout "channel" (options().key_channels; q8, q4, q2 and adaptive): keys are not
// stored per token but in blocks of kKvTokenGroup (G) positions, quantized per channel
// (kernels/kv.h "Key blocks"). Per (layer, sequence) the newest block is a residual of G
// fp16 rows; when the first position of the next block is written, the residual is
// quantized into its block in place (nothing else moves). Values keep the layout of the
// type (per token; adaptive: ring + low store as above). Adaptive key blocks: the blocks
// holding the first --kv-sinks positions are 8-bit; every later block is 4-bit while it
// holds a lo-plane set (G planes) from a key pool, else 2-bit. sink-window: a set for
// every block; squat: sets for half of the blocks that can be 2/4-bit; when none is free,
// the eighth of the 4-bit blocks with the lowest mean attention received (the same
// accumulated attention as the tokens', averaged over the block) drop their lo planes in
// place (the per-channel 4 -> 2 bit step). The recent window of keys is the fp16 residual.
// Attention is causal per block: a query must run after the writes of its own block and
// before the first write of the next one (LlamaGraph cuts a prefill chunk where a new
// block starts), so prefill sees exactly what decode sees.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "kernels/kv.h"

namespace edgeq {

enum class KvPolicy : uint8_t { kSinkWindow = 0, kSquat };

struct KvCacheOptions {
  KvType type = KvType::kF32;
  bool adaptive = false;
  KvPolicy policy = KvPolicy::kSinkWindow;
  int32_t window = 32;  // adaptive: recent tokens kept at 8 bits
  int32_t sinks = 4;    // adaptive: first tokens kept at 8 bits
  // Rotate q, k and v of every head by a fixed orthogonal matrix (KvRotate) before the
  // cache quantizes them, and the attention output back: spreads outlier channels.
  bool rotate = false;
  // --kv-key-layout channel: keys quantized per channel in blocks of kKvTokenGroup tokens
  // (KIVI), the block being filled kept in fp16; values stay per token. See below.
  bool key_channels = false;
};

// Per-head rotation R = H diag(s) / sqrt(b) on consecutive blocks of b channels, b the
// largest power of two dividing hd (at most 128), H the Walsh-Hadamard matrix, s a fixed
// +-1 pattern. Orthogonal: (R q).(R k) = q.k, and sum p_i R v_i = R (sum p_i v_i).
void KvRotate(float* x, int32_t hd);
void KvUnrotate(float* x, int32_t hd);  // R^T

// Parses --kv-type / --kv-policy values (adaptive sets .adaptive).
Status ParseKvOptions(const std::string& type, const std::string& policy, int32_t window, int32_t sinks,
                      KvCacheOptions* out, bool rotate = false, const std::string& key_layout = "token");
std::string KvOptionsName(const KvCacheOptions& o);  // "q4", "adaptive/squat w32 s4"

class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> Create(int32_t n_layers, int32_t n_seq, int32_t n_ctx, int32_t kv_dim,
                                                 int32_t n_threads, const KvCacheOptions& o);

  // Stores position pos of sequence seq (layer l). Writing position 0 starts the
  // sequence afresh. Not thread-safe: one writer.
  void Write(int32_t l, int32_t seq, int32_t pos, const float* k, const float* v);

  // Calls fn(first_pos, key_span, value_span) for runs covering positions [0, len) in
  // order. Read-only: many threads may call it at once.
  template <typename F>
  void ForEachSpan(int32_t l, int32_t seq, int32_t len, F&& fn) const;

  // squat: per-thread accumulators of attention received, [n_ctx] for (tid, seq); the
  // caller adds probabilities (each thread to its own), then Commit records how far the
  // queries have got. A position's importance is the sum over the threads' accumulators.
  bool tracks_importance() const { return o_.adaptive && o_.policy == KvPolicy::kSquat; }
  float* ImportanceScratch(int tid, int32_t seq) {
    return imp_.data() + (static_cast<int64_t>(tid) * n_seq_ + seq) * n_ctx_;
  }
  float Importance(int32_t seq, int32_t pos) const {
    float a = 0.0f;
    for (int t = 0; t < n_threads_; ++t) a += imp_[(static_cast<int64_t>(t) * n_seq_ + seq) * n_ctx_ + pos];
    return a;
  }
  void CommitImportance(int32_t seq, int32_t last_query_pos);

  uint64_t Bytes() const { return bytes_; }
  bool key_channels() const { return key_ch_; }
  const KvCacheOptions& options() const { return o_; }
  // 2-bit / 4-bit / 8-bit tokens of (l, seq) among positions [0, len) (for reports).
  void CountPrecisions(int32_t l, int32_t seq, int32_t len, int64_t counts[3]) const;

 private:
  static constexpr int32_t kInRing = -3;  // lo_slot_ value: position lives in the hi store
  static constexpr int32_t kNoLo = -1;    // low store, 2-bit

  KvCache() = default;
  int64_t Idx(int32_t l, int32_t seq) const { return static_cast<int64_t>(l) * n_seq_ + seq; }
  int32_t HiSlot(int32_t pos) const { return pos < o_.sinks ? pos : o_.sinks + (pos - o_.sinks) % o_.window; }
  // Byte offset of aged position pos's low-store row (sinks <= pos < n_ctx - window).
  int64_t LowOffset(int64_t idx, int32_t pos) const { return (idx * n_low_ + (pos - o_.sinks)) * low_row_; }
  void ResetSeq(int32_t seq);
  // Re-quantizes layer l's ring row hs (holding pos) into pos's low row: 4-bit with pool
  // slot s, 2-bit when s < 0.
  void Age(int32_t l, int32_t seq, int32_t pos, int32_t hs, int32_t s);
  int32_t TakeVictimSlot(int32_t seq);
  // Key blocks (channel layout).
  void WriteKey(int32_t l, int32_t seq, int32_t pos, const float* k);
  void SealKeyBlock(int32_t l, int32_t seq, int32_t b);
  int32_t TakeKeySlot(int32_t seq);
  int BlockBits(int32_t b, int32_t slot) const;  // slot: the block's lo-plane set (adaptive)
  int64_t BlockOffset(int32_t b) const;           // in a (layer, seq)'s block store
  uint8_t* BlockLo(int64_t idx, int32_t b, int32_t slot);
  KvSpan KeySpan(int32_t l, int32_t seq, int32_t p, int32_t n) const;
  template <typename F>
  void ForEachRowSpan(int32_t l, int32_t seq, int32_t len, F&& fn) const;

  KvCacheOptions o_;
  int32_t n_layers_ = 0, n_seq_ = 0, n_ctx_ = 0, dim_ = 0, n_threads_ = 1;
  int64_t row_ = 0;  // uniform: row bytes
  std::vector<uint8_t> k_, v_;  // uniform rows
  // adaptive
  int32_t n_hi_ = 0, n_low_ = 0, cap_ = 0;
  int64_t hi_row_ = 0, low_row_ = 0, plane_ = 0;
  std::vector<uint8_t> hi_k_, hi_v_, low_k_, low_v_, pool_k_, pool_v_;
  // Per sequence, shared by all layers:
  std::vector<int32_t> lo_slot_;   // [seq][n_ctx]: kInRing, kNoLo or pool slot
  std::vector<int32_t> owner_;     // [seq][n_hi]: position in each hi slot, -1 none
  std::vector<int32_t> row_pos_;   // [l][seq][n_hi]: position whose rows that layer's slot holds
  std::vector<int32_t> free_;      // [seq][cap] free pool slots (a stack)
  std::vector<int32_t> n_free_;    // [seq]
  std::vector<int32_t> last_query_;  // [seq] highest position that has attended
  std::vector<float> imp_;         // [threads][seq][n_ctx] attention received (squat)
  std::vector<float> tmp_k_, tmp_v_;
  std::vector<std::pair<float, int32_t>> cand_;  // squat: (mean attention, id) victim heap
  static size_t VictimCount(int32_t cap) { return std::max<size_t>(1, static_cast<size_t>(cap / 8)); }
  void OfferVictim(float mean_attention, int32_t id, size_t k);
  // Key blocks (channel layout)
  bool key_ch_ = false;
  int32_t nb_ = 0, n_sink_blk_ = 0, kcap_ = 0;
  int64_t kper_ = 0;               // block-store bytes per (layer, seq)
  std::vector<uint8_t> kblk_;      // [l][seq] blocks (BlockOffset)
  std::vector<uint8_t> kpool_;     // adaptive: [l][seq][kcap] lo-plane sets of G planes
  std::vector<uint16_t> kres_;     // [l][seq][G][dim] fp16 residual (the block being filled)
  std::vector<int32_t> kres_blk_;  // [l][seq] block in the residual
  std::vector<int32_t> kused_;     // adaptive: [l][seq][nb] set each layer's block was written with
  std::vector<int32_t> kslot_;     // adaptive: [seq][nb] decision (set, or -1 = 2-bit)
  std::vector<int32_t> kfree_;     // adaptive: [seq][kcap] free sets (a stack)
  std::vector<int32_t> kn_free_;   // [seq]
  std::vector<float> ktmp_;        // dim (a rewind's dequantized row)
  uint64_t bytes_ = 0;
};

template <typename F>
void KvCache::ForEachSpan(int32_t l, int32_t seq, int32_t len, F&& fn) const {
  if (!key_ch_) return ForEachRowSpan(l, seq, len, fn);
  // Value runs cut where a key block ends; each piece gets the key block's span.
  ForEachRowSpan(l, seq, len, [&](int32_t p0, const KvSpan&, const KvSpan& vs) {
    for (int32_t q = p0; q < p0 + vs.n;) {
      const int32_t e = std::min(p0 + vs.n, (q / kKvTokenGroup + 1) * kKvTokenGroup);
      KvSpan v2 = vs;
      v2.n = e - q;
      v2.rows += (q - p0) * vs.stride;
      if (vs.lo_slot != nullptr) {
        v2.lo_slot += q - p0;
      } else if (vs.lo != nullptr) {
        v2.lo += (q - p0) * vs.lo_stride;
      }
      fn(q, KeySpan(l, seq, q, e - q), static_cast<const KvSpan&>(v2));
      q = e;
    }
  });
}

template <typename F>
void KvCache::ForEachRowSpan(int32_t l, int32_t seq, int32_t len, F&& fn) const {
  // With key blocks the key stores are not allocated: the key spans built here alias the
  // value stores and ForEachSpan replaces them.
  const std::vector<uint8_t>& k_ = key_ch_ ? v_ : this->k_;
  const std::vector<uint8_t>& hi_k_ = key_ch_ ? hi_v_ : this->hi_k_;
  const std::vector<uint8_t>& low_k_ = key_ch_ ? low_v_ : this->low_k_;
  const std::vector<uint8_t>& pool_k_ = key_ch_ ? pool_v_ : this->pool_k_;
  KvSpan ks, vs;
  ks.dim = vs.dim = dim_;
  if (!o_.adaptive) {
    const int64_t base = Idx(l, seq) * n_ctx_ * row_;
    ks.kind = vs.kind = KvKernelOf(o_.type);
    ks.n = vs.n = len;
    ks.rows = k_.data() + base;
    vs.rows = v_.data() + base;
    ks.stride = vs.stride = row_;
    if (o_.type == KvType::kQ4) {
      const int64_t lo_off = KvQ4LoOffset(dim_);
      ks.lo = ks.rows + lo_off;
      vs.lo = vs.rows + lo_off;
      ks.lo_stride = vs.lo_stride = row_;
    }
    fn(0, ks, vs);
    return;
  }
  const int64_t idx = Idx(l, seq);
  const uint8_t* hk = hi_k_.data() + idx * n_hi_ * hi_row_;
  const uint8_t* hv = hi_v_.data() + idx * n_hi_ * hi_row_;
  const int32_t* slot = lo_slot_.data() + static_cast<int64_t>(seq) * n_ctx_;
  // A position is read from the ring while this layer's ring row still holds it: layer 0
  // decides a token's aging for all layers, but each layer re-quantizes its own row only
  // when it overwrites that ring slot (with key blocks a layer attends between writes).
  const int32_t* held = row_pos_.data() + idx * n_hi_;
  auto in_ring = [&](int32_t p) { return held[HiSlot(p)] == p; };
  // Sinks: hi slots 0..sinks-1.
  const int32_t ns = std::min(len, o_.sinks);
  if (ns > 0) {
    ks.kind = vs.kind = KvKernel::kQ8;
    ks.n = vs.n = ns;
    ks.rows = hk;
    vs.rows = hv;
    ks.stride = vs.stride = hi_row_;
    fn(0, ks, vs);
  }
  for (int32_t p = o_.sinks; p < len;) {
    int32_t e = p + 1;
    if (in_ring(p)) {
      // A run of ring positions, split where the ring wraps.
      while (e < len && in_ring(e) && HiSlot(e) == HiSlot(e - 1) + 1) ++e;
      ks.kind = vs.kind = KvKernel::kQ8;
      ks.rows = hk + HiSlot(p) * hi_row_;
      vs.rows = hv + HiSlot(p) * hi_row_;
      ks.stride = vs.stride = hi_row_;
      ks.lo = vs.lo = nullptr;
      ks.lo_slot = vs.lo_slot = nullptr;
    } else {
      while (e < len && !in_ring(e)) ++e;
      ks.kind = vs.kind = KvKernel::kQ2p;
      ks.rows = low_k_.data() + LowOffset(idx, p);
      vs.rows = low_v_.data() + LowOffset(idx, p);
      ks.stride = vs.stride = low_row_;
      ks.lo = pool_k_.data() + idx * cap_ * plane_;
      vs.lo = pool_v_.data() + idx * cap_ * plane_;
      ks.lo_stride = vs.lo_stride = plane_;
      ks.lo_slot = vs.lo_slot = slot + p;
    }
    ks.n = vs.n = e - p;
    fn(p, ks, vs);
    p = e;
  }
}

}  // namespace edgeq
