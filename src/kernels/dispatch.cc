// Fills the kernel table once from the detected CPU features. EDGEQ_ISA forces a
// lower tier (generic, avx2, avxvnni, avx512vnni) for tests and for users.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "kernels/kernels.h"

namespace edgeq {

#if defined(__x86_64__)
namespace avx2 {
float DotF32(const float* a, const float* b, int64_t n);
void F16ToF32(const uint16_t* src, float* dst, int64_t n);
void SwiGluF32(float* gate, const float* up, int64_t n);
float ExpSumF32(float* x, int64_t n, float sub);
float MaxF32(const float* x, int64_t n);
void ScaleF32(float* x, int64_t n, float s);
void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a);
void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t);
void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t);
void GemmEq(EqType type, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
            const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
void PackEqX86(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out);
uint64_t PackedEqBytesX86(EqType t, int64_t rows, int64_t cols);
void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride);
void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride);
}  // namespace avx2
namespace avxvnni {
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
}  // namespace avxvnni
namespace avx512vnni {
float ExpSumF32(float* x, int64_t n, float sub);
float MaxF32(const float* x, int64_t n);
void ScaleF32(float* x, int64_t n, float s);
void PackEq16(EqType t, const uint8_t* w, uint64_t row_bytes, int64_t rows, int64_t cols, uint8_t* out);
uint64_t PackedEqBytes16(EqType t, int64_t rows, int64_t cols);
void QuantizeAct(const float* x, int64_t x_stride, int64_t n_tok, int64_t n, QuantAct* a);
void NormQuantAct(const float* x, const float* w, float scale, float* out, int64_t n, QuantAct* a, int64_t t);
void SwiGluQuantAct(float* gate, const float* up, int64_t n, QuantAct* a, int64_t t);
void GemmEq(EqType type, const uint8_t* w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t cols,
            const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
void KvScores(const KvSpan& s, int64_t off, int32_t hd, const float* q, int32_t nq, int64_t q_stride, float scale,
              float* out, int64_t out_stride);
void KvAccum(const KvSpan& s, int64_t off, int32_t hd, const float* p, int32_t nq, int64_t p_stride, float* out,
             int64_t out_stride);
}  // namespace avx512vnni
#endif

#if defined(__aarch64__)
namespace neon {
float DotF32(const float* a, const float* b, int64_t n);
void F16ToF32(const uint16_t* src, float* dst, int64_t n);
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
}  // namespace neon
namespace dotprod {
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
}  // namespace dotprod
namespace i8mm {
void GemmEqPacked(EqType t, const uint8_t* packed, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                  const QuantAct& a, int64_t n_tok, float* y, int64_t y_stride);
}  // namespace i8mm
#endif

namespace {

KernelTable Generic() {
  KernelTable t;
  t.isa = "generic";
  t.dot_f32 = generic::DotF32;
  t.f16_to_f32 = generic::F16ToF32;
  t.swiglu_f32 = generic::SwiGluF32;
  t.exp_sum_f32 = generic::ExpSumF32;
  t.max_f32 = generic::MaxF32;
  t.scale_f32 = generic::ScaleF32;
  t.quantize_act = generic::QuantizeAct;
  t.norm_quant_act = generic::NormQuantAct;
  t.swiglu_quant_act = generic::SwiGluQuantAct;
  t.gemm_eq = generic::GemmEq;
  t.gemm_eq_packed = generic::GemmEqPacked;
  t.pack_eq = generic::PackEqRows8;
  t.packed_eq_bytes = generic::PackedEqBytesRows8;
  t.pack_rows = kPackRows;
  t.pack_layout = "rows8";
  t.kv_scores = generic::KvScores;
  t.kv_accum = generic::KvAccum;
  return t;
}

// nullopt-like: returns false when the CPU lacks the tier.
bool MakeTier(const std::string& tier, KernelTable* out) {
  *out = Generic();
  if (tier == "generic") return true;
#if defined(__x86_64__)
  const CpuFeatures& f = GetCpuFeatures();
  const bool has_avx2 = f.avx2 && f.fma && f.f16c;
  if (tier == "avx2" && has_avx2) {
    out->isa = "avx2";
    out->dot_f32 = avx2::DotF32;
    out->f16_to_f32 = avx2::F16ToF32;
    out->swiglu_f32 = avx2::SwiGluF32;
    out->exp_sum_f32 = avx2::ExpSumF32;
    out->max_f32 = avx2::MaxF32;
    out->scale_f32 = avx2::ScaleF32;
    out->quantize_act = avx2::QuantizeAct;
    out->norm_quant_act = avx2::NormQuantAct;
    out->swiglu_quant_act = avx2::SwiGluQuantAct;
    out->gemm_eq = avx2::GemmEq;
    out->gemm_eq_packed = avx2::GemmEqPacked;
    out->pack_eq = avx2::PackEqX86;
    out->packed_eq_bytes = avx2::PackedEqBytesX86;
    out->pack_layout = "rows8-x86";
    out->kv_scores = avx2::KvScores;
    out->kv_accum = avx2::KvAccum;
    return true;
  }
  // AVX-VNNI: the AVX2 tier with 256-bit VEX vpdpbusd in its packed kernels.
  if (tier == "avxvnni" && has_avx2 && f.avxvnni) {
    MakeTier("avx2", out);
    out->isa = "avxvnni";
    out->gemm_eq_packed = avxvnni::GemmEqPacked;
    return true;
  }
  // AVX-512 VNNI: 512-bit vpdpbusd over 16-row groups (rows16-x86), 512-bit activation
  // quantizers (x86_avx512vnni/act.cc), and 512-bit fp32/f16 attention and softmax loops
  // (the quantized KV kinds keep the AVX2 loops). swiglu_f32 stays AVX2 (swiglu_quant_act
  // reproduces avx2::SwiGluF32's values). DQ too: the folder is compiled with -mavx512dq
  // and GCC uses it unasked (vandps zmm, kmovb in act.cc); every VNNI CPU has it.
  if (tier == "avx512vnni" && has_avx2 && f.avx512f && f.avx512vl && f.avx512bw && f.avx512dq && f.avx512vnni) {
    MakeTier("avx2", out);
    out->isa = "avx512vnni";
    out->quantize_act = avx512vnni::QuantizeAct;
    out->norm_quant_act = avx512vnni::NormQuantAct;
    out->swiglu_quant_act = avx512vnni::SwiGluQuantAct;
    out->gemm_eq = avx512vnni::GemmEq;
    out->gemm_eq_packed = avx512vnni::GemmEqPacked;
    out->pack_eq = avx512vnni::PackEq16;
    out->packed_eq_bytes = avx512vnni::PackedEqBytes16;
    out->pack_rows = kRows16X86.rows;
    out->pack_layout = "rows16-x86";
    out->exp_sum_f32 = avx512vnni::ExpSumF32;
    out->max_f32 = avx512vnni::MaxF32;
    out->scale_f32 = avx512vnni::ScaleF32;
    out->kv_scores = avx512vnni::KvScores;
    out->kv_accum = avx512vnni::KvAccum;
    return true;
  }
#endif
#if defined(__aarch64__)
  // ARM64 tiers, each a superset of the one below: neon (AArch64 base: fp32 and NEON
  // integer lane products), dotprod (sdot, HWCAP_ASIMDDP), i8mm (smmla for token pairs,
  // HWCAP2_I8MM). All read the generic rows8 layout (fp32 scales); quantize_act, SwiGLU,
  // exp and the row-layout gemm_eq stay generic.
  const CpuFeatures& f = GetCpuFeatures();
  const bool arm_ok = (tier == "neon" && f.neon) || (tier == "dotprod" && f.dotprod) ||
                      (tier == "i8mm" && f.dotprod && f.i8mm);
  if (arm_ok) {
    out->isa = tier == "neon" ? "neon" : tier == "dotprod" ? "dotprod" : "i8mm";
    out->dot_f32 = neon::DotF32;
    out->f16_to_f32 = neon::F16ToF32;
    out->gemm_eq_packed = tier == "neon" ? neon::GemmEqPacked : tier == "dotprod" ? dotprod::GemmEqPacked
                                                                                  : i8mm::GemmEqPacked;
    return true;
  }
#endif
  return false;
}

#if defined(__aarch64__)
const char* const kTiers[] = {"i8mm", "dotprod", "neon", "generic"};  // best first
#else
const char* const kTiers[] = {"avx512vnni", "avxvnni", "avx2", "generic"};  // best first
#endif
constexpr int kNumTiers = sizeof(kTiers) / sizeof(kTiers[0]);

KernelTable MakeTable() {
  const char* env = std::getenv("EDGEQ_ISA");
  std::string want = env != nullptr ? env : "";
  KernelTable t;
  if (!want.empty()) {
    if (MakeTier(want, &t)) return t;
    std::string names;
    for (const char* tier : kTiers) names += std::string(names.empty() ? "" : ", ") + tier;
    std::fprintf(stderr, "edgeq: warning: EDGEQ_ISA=%s is not available on this CPU (tiers: %s); using the best "
                         "available\n", want.c_str(), names.c_str());
  }
  for (const char* tier : kTiers) {
    if (MakeTier(tier, &t)) return t;
  }
  return Generic();
}

}  // namespace

const KernelTable& Kernels() {
  static const KernelTable table = MakeTable();
  return table;
}

const KernelTable* KernelsForTier(const char* tier) {
  static KernelTable tables[kNumTiers];
  static bool ok[kNumTiers];
  static const bool init = [] {
    for (int i = 0; i < kNumTiers; ++i) ok[i] = MakeTier(kTiers[i], &tables[i]);
    return true;
  }();
  (void)init;
  for (int i = 0; i < kNumTiers; ++i) {
    if (std::strcmp(tier, kTiers[i]) == 0) return ok[i] ? &tables[i] : nullptr;
  }
  return nullptr;
}

}  // namespace edgeq
