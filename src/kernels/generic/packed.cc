// The packed layout's definition (PackEq) and its scalar reference kernel.
#include "kernels/packed.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "core/fp16.h"

namespace edgeq {

bool PackableEq(EqType t) {
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(t));
  return tr != nullptr && tr->integer_kernel;
}

uint64_t PackedScaleBytes(const PackLayout& l, EqType t, int64_t cols) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  uint64_t raw;
  if (tr.group == 0) {
    raw = 4 * static_cast<uint64_t>(l.rows);  // fp32 row scales in every layout
  } else {
    const int64_t nwb = (cols + tr.group - 1) / tr.group;
    raw = static_cast<uint64_t>(nwb) * l.rows * (l.f16_scales ? 2 : 4) * (tr.asymmetric ? 2 : 1);
  }
  const uint64_t a = static_cast<uint64_t>(l.scale_align);
  return (raw + a - 1) / a * a;
}

uint64_t PackedGroupBytes(const PackLayout& l, EqType t, int64_t cols) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const int64_t nb = (cols + kActBlock - 1) / kActBlock;
  return PackedScaleBytes(l, t, cols) + static_cast<uint64_t>(nb) * l.rows * (tr.group == 0 ? 32 : 16);
}

uint64_t PackedEqBytes(const PackLayout& l, EqType t, int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + l.rows - 1) / l.rows) * PackedGroupBytes(l, t, cols);
}

namespace {
inline float H16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return Fp16ToFp32(h);
}
}  // namespace

namespace {

// Packs row groups [g0, g1). Per row and 32-element sub-block the row's values are read
// once into `vals` and scattered to their interleaved places.
void PackGroups(PackLayout l, EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols,
                uint8_t* out, int64_t g0, int64_t g1) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const int64_t nb = (cols + kActBlock - 1) / kActBlock;
  const uint64_t gbytes = PackedGroupBytes(l, t, cols);
  const uint64_t sbytes = PackedScaleBytes(l, t, cols);
  std::memset(out + g0 * gbytes, 0, (g1 - g0) * gbytes);
  const int R = l.rows;
  uint8_t vals[kActBlock];
  for (int64_t rg = g0; rg < g1; ++rg) {
    uint8_t* o = out + rg * gbytes;
    if (tr.group == 0) {
      float* scale = reinterpret_cast<float*>(o);
      uint8_t* q = o + sbytes;
      for (int i = 0; i < R && rg * R + i < rows; ++i) {
        const uint8_t* row = w + (rg * R + i) * row_bytes;
        std::memcpy(&scale[i], row, 4);
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t ab = c / kActBlock, j = (c % kActBlock) / 4;
          q[ab * 32 * R + j * 4 * R + 4 * i + c % 4] = row[4 + c];
        }
      }
      continue;
    }
    const int g = tr.group, per = g / kActBlock;
    const int64_t nwb = (cols + g - 1) / g;
    // Scales d[nwb][R] then (asymmetric) m[nwb][R], fp32 or fp16 copies of the file's.
    auto put_scale = [&](int64_t idx, const uint8_t* h) {
      if (l.f16_scales) {
        if (h) std::memcpy(o + 2 * idx, h, 2);
      } else {
        const float v = h ? H16(h) : 0.0f;
        std::memcpy(o + 4 * idx, &v, 4);
      }
    };
    uint8_t* qs = o + sbytes;
    for (int i = 0; i < R; ++i) {
      const int64_t r = rg * R + i;
      const uint8_t* row = r < rows ? w + r * row_bytes : nullptr;
      for (int64_t wb = 0; wb < nwb; ++wb) {
        const uint8_t* blk = row ? row + wb * tr.block_bytes : nullptr;
        put_scale(wb * R + i, blk);
        if (tr.asymmetric) put_scale((nwb + wb) * R + i, blk ? blk + 2 : nullptr);
        const uint8_t* rq = blk ? blk + (tr.asymmetric ? 4 : 2) : nullptr;
        const int half = g / 2;
        for (int k = 0; k < per; ++k) {
          const int64_t ab = wb * per + k;
          if (ab >= nb) break;
          if (rq != nullptr) {
            for (int e = 0; e < kActBlock; ++e) {  // element k*32+e of the block (docs/formats.md)
              const int idx = k * kActBlock + e;
              vals[e] = static_cast<uint8_t>(idx < half ? rq[idx] & 0x0F : rq[idx - half] >> 4);
            }
          } else {
            std::memset(vals, tr.asymmetric ? 0 : 8, sizeof vals);  // padding rows: value 0
          }
          // P_m = V_m | V_{m+4} << 4, 4 bytes of row i at byte 4i of each 4R-byte vector.
          uint8_t* p = qs + ab * 16 * R + 4 * i;
          for (int m = 0; m < 4; ++m) {
            uint32_t lo, hi;
            std::memcpy(&lo, vals + 4 * m, 4);
            std::memcpy(&hi, vals + 4 * (m + 4), 4);
            const uint32_t word = lo | hi << 4;  // every byte < 16: no carries between bytes
            std::memcpy(p + m * 4 * R, &word, 4);
          }
        }
      }
    }
  }
}

}  // namespace

void PackEq(const PackLayout& l, EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols,
            uint8_t* out) {
  // Large matrices are split over a few threads (load time of big models).
  const int64_t n_groups = (rows + l.rows - 1) / l.rows;
  const int64_t n_threads =
      std::min<int64_t>({static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())), 8,
                         std::max<int64_t>(1, n_groups * cols / (1 << 20))});
  if (n_threads <= 1) {
    PackGroups(l, t, w, row_bytes, rows, cols, out, 0, n_groups);
    return;
  }
  std::vector<std::thread> th;
  for (int64_t i = 0; i < n_threads; ++i) {
    const int64_t g0 = n_groups * i / n_threads, g1 = n_groups * (i + 1) / n_threads;
    th.emplace_back(PackGroups, l, t, w, row_bytes, rows, cols, out, g0, g1);
  }
  for (auto& x : th) x.join();
}

namespace generic {

void PackEqRows8(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out) {
  PackEq(kRows8Generic, t, w, row_bytes, rows, cols, out);
}
uint64_t PackedEqBytesRows8(EqType t, int64_t rows, int64_t cols) {
  return PackedEqBytes(kRows8Generic, t, rows, cols);
}

void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride) {
  const EqTypeTraits& tr = *GetEqTypeTraits(static_cast<uint32_t>(t));
  const int64_t nb = a.nb;
  const uint64_t gbytes = PackedGroupBytes(t, cols);
  for (int64_t rg = g0; rg < g1; ++rg) {
    const uint8_t* o = packed + rg * gbytes;
    for (int i = 0; i < kPackRows; ++i) {
      const int64_t r = rg * kPackRows + i;
      if (r >= rows) break;
      for (int64_t tok = 0; tok < n_tok; ++tok) {
        const int8_t* q = a.qrow(tok);
        const float* ad = a.drow(tok);
        const int32_t* as = a.srow(tok);
        float acc = 0.0f;
        if (tr.group == 0) {
          const float* scale = reinterpret_cast<const float*>(o);
          const int8_t* wq = reinterpret_cast<const int8_t*>(o + 4 * kPackRows);
          for (int64_t ab = 0; ab < nb; ++ab) {
            int32_t isum = 0;
            for (int c = 0; c < kActBlock; ++c) isum += wq[ab * 256 + (c / 4) * 32 + 4 * i + c % 4] * q[ab * kActBlock + c];
            acc += ad[ab] * static_cast<float>(isum);
          }
          acc *= scale[i];
        } else {
          const int per = tr.group / kActBlock;
          const int64_t nwb = (cols + tr.group - 1) / tr.group;
          const float* d = reinterpret_cast<const float*>(o);
          const float* m = tr.asymmetric ? d + nwb * kPackRows : nullptr;
          const uint8_t* qs = o + nwb * kPackRows * 4 * (tr.asymmetric ? 2 : 1);
          for (int64_t ab = 0; ab < nb; ++ab) {
            const int64_t wb = ab / per;
            int32_t isum = 0;
            for (int c = 0; c < kActBlock; ++c) {
              const int j = c / 4;
              const uint8_t byte = qs[ab * 128 + (j % 4) * 32 + 4 * i + c % 4];
              const int nib = j < 4 ? (byte & 0x0F) : (byte >> 4);
              isum += nib * q[ab * kActBlock + c];
            }
            const float wd = d[wb * kPackRows + i];
            if (m) acc += ad[ab] * (wd * static_cast<float>(isum) + m[wb * kPackRows + i] * static_cast<float>(as[ab]));
            else acc += wd * ad[ab] * static_cast<float>(isum - 8 * as[ab]);
          }
        }
        y[tok * y_stride + r] = acc;
      }
    }
  }
}

}  // namespace generic
}  // namespace edgeq
