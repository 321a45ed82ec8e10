#include "model/gptq.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>

#include "core/thread_pool.h"
#include "format/eq_types.h"

namespace edgeq {
namespace {

// In-place lower Cholesky factor of a symmetric positive definite n x n matrix.
bool Cholesky(std::vector<double>* a, int64_t n) {
  double* A = a->data();
  for (int64_t j = 0; j < n; ++j) {
    double s = A[j * n + j];
    for (int64_t k = 0; k < j; ++k) s -= A[j * n + k] * A[j * n + k];
    if (!(s > 0)) return false;
    const double d = std::sqrt(s);
    A[j * n + j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double t = A[i * n + j];
      for (int64_t k = 0; k < j; ++k) t -= A[i * n + k] * A[j * n + k];
      A[i * n + j] = t / d;
    }
    for (int64_t k = j + 1; k < n; ++k) A[j * n + k] = 0;
  }
  return true;
}

// Upper factor U of H^-1 = U^T U, from H (full symmetric, already damped).
bool InverseUpperFactor(std::vector<double> h, int64_t n, std::vector<double>* u) {
  if (!Cholesky(&h, n)) return false;
  // Linv = L^-1 (lower triangular), by forward substitution on the identity.
  std::vector<double> li(static_cast<size_t>(n * n), 0.0);
  for (int64_t c = 0; c < n; ++c) {
    li[c * n + c] = 1.0 / h[c * n + c];
    for (int64_t i = c + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = c; k < i; ++k) s += h[i * n + k] * li[k * n + c];
      li[i * n + c] = -s / h[i * n + i];
    }
  }
  // H^-1 = Linv^T Linv.
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) {
      double s = 0;
      for (int64_t k = j; k < n; ++k) s += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = inv[j * n + i] = s;
    }
  }
  if (!Cholesky(&inv, n)) return false;
  u->assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) (*u)[j * n + i] = inv[i * n + j];
  }
  return true;
}

double QuadForm(const std::vector<double>& h, const double* e, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    double t = 0.5 * h[i * n + i] * e[i];
    for (int64_t j = i + 1; j < n; ++j) t += h[i * n + j] * e[j];
    s += 2 * e[i] * t;
  }
  return s;
}

}  // namespace

Result<double> HessianLoss(const float* w, int64_t rows, int64_t n, const std::vector<double>& h, GgmlType type,
                           const uint8_t* q) {
  if (static_cast<int64_t>(h.size()) != n * n) return InvalidArgument("Hessian size does not match the matrix");
  ASSIGN_OR_RETURN(uint64_t rb, RowBytes(type, n));
  std::vector<float> back(n);
  std::vector<double> e(n), x(n);
  double num = 0, den = 0;
  for (int64_t r = 0; r < rows; ++r) {
    RETURN_IF_ERROR(DecodeRow(type, q + r * rb, back.data(), n));
    for (int64_t j = 0; j < n; ++j) {
      e[j] = static_cast<double>(w[r * n + j]) - back[j];
      x[j] = w[r * n + j];
    }
    num += QuadForm(h, e.data(), n);
    den += QuadForm(h, x.data(), n);
  }
  return den > 0 ? num / den : 0.0;
}

Result<GptqFactor> GptqFactorize(const std::vector<double>& h_in, int64_t n, const GptqOptions& opts) {
  if (static_cast<int64_t>(h_in.size()) != n * n) return InvalidArgument("Hessian size does not match the matrix");
  GptqFactor f;
  f.n = n;
  f.act_order = opts.act_order;
  // Symmetric copy; channels never seen (H_ii = 0) are quantized as they are, with no
  // error feedback (their weights never meet a nonzero input).
  std::vector<double> h(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) h[i * n + j] = h[j * n + i] = h_in[i * n + j];
  }
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += h[i * n + i];
  mean_diag /= n;
  if (!(mean_diag > 0)) mean_diag = 1;
  f.perm.resize(n);
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (opts.act_order) {
    std::stable_sort(f.perm.begin(), f.perm.end(), [&](int64_t a, int64_t b) { return h[a * n + a] > h[b * n + b]; });
  }
  // Permuted, damped Hessian.
  std::vector<double> hp(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) hp[i * n + j] = h[f.perm[i] * n + f.perm[j]];
    if (hp[i * n + i] == 0) hp[i * n + i] = mean_diag;
    hp[i * n + i] += opts.damp * mean_diag;
  }
  double damp = opts.damp, total = opts.damp;
  while (!InverseUpperFactor(hp, n, &f.u)) {  // numerically indefinite: more damping
    if (damp > 10) return Internal("GPTQ: the calibration Hessian is not positive definite");
    for (int64_t i = 0; i < n; ++i) hp[i * n + i] += damp * mean_diag;
    total += damp;
    damp *= 2;
  }
  f.damp_used = total;
  f.imp.resize(n);
  for (int64_t i = 0; i < n; ++i) f.imp[i] = static_cast<float>(h[i * n + i] + opts.damp * mean_diag);
  return f;
}

Result<double> GptqQuantizeFactored(const float* w, int64_t rows, int64_t n, const std::vector<double>& h_in,
                                    const GptqFactor& f, GgmlType type, uint8_t* out, ThreadPool* pool) {
  if (!IsEqType(type)) return InvalidArgument(std::string("GPTQ writes edgeq formats only, not ") + TypeName(type));
  if (f.n != n || static_cast<int64_t>(f.u.size()) != n * n) return InvalidArgument("GPTQ factor does not match the matrix");
  const EqType et = static_cast<EqType>(type);
  const EqTypeTraits* tr = GetEqTypeTraits(static_cast<uint32_t>(type));
  const int64_t g = tr->group;  // 0: one scale per row (w8c), fixed before the first column
  ASSIGN_OR_RETURN(uint64_t rb, RowBytes(type, n));
  const std::vector<int64_t>& perm = f.perm;
  const std::vector<double>& u = f.u;
  const bool static_groups = f.act_order || g == 0;

  std::atomic<bool> failed{false};
  auto body = [&](int, int64_t r0, int64_t r1) {
    std::vector<double> row(n);  // permuted order, updated as columns are quantized
    std::vector<float> tmp(n);
    for (int64_t r = r0; r < r1; ++r) {
      uint8_t* dst = out + r * rb;
      const float* src = w + r * n;
      if (static_groups && !QuantizeRowEq(et, src, dst, n, g == 0 ? nullptr : f.imp.data()).ok()) failed = true;
      for (int64_t k = 0; k < n; ++k) row[k] = src[perm[k]];
      for (int64_t k = 0; k < n; ++k) {
        const int64_t c = perm[k];
        if (!static_groups && c % g == 0) {
          // Group scale from the error-updated weights of this group (identity order).
          const int64_t valid = std::min<int64_t>(g, n - c);
          for (int64_t j = 0; j < valid; ++j) tmp[j] = static_cast<float>(row[k + j]);
          if (!QuantizeRowEq(et, tmp.data(), dst + (c / g) * tr->block_bytes, valid, f.imp.data() + c).ok()) failed = true;
        }
        const float q = SetRowElementEq(et, dst, c, static_cast<float>(row[k]));
        const double err = (row[k] - q) / u[k * n + k];
        const double* uk = u.data() + k * n;
        for (int64_t j = k + 1; j < n; ++j) row[j] -= err * uk[j];
      }
    }
  };
  if (pool != nullptr) pool->ParallelFor(rows, 8, body);
  else body(0, 0, rows);
  if (failed) return Internal("GPTQ: quantizing a row failed");
  return HessianLoss(w, rows, n, h_in, type, out);
}

Result<double> GptqQuantize(const float* w, int64_t rows, int64_t n, const std::vector<double>& h_in, GgmlType type,
                            const GptqOptions& opts, uint8_t* out, ThreadPool* pool) {
  if (!IsEqType(type)) return InvalidArgument(std::string("GPTQ writes edgeq formats only, not ") + TypeName(type));
  ASSIGN_OR_RETURN(GptqFactor f, GptqFactorize(h_in, n, opts));
  return GptqQuantizeFactored(w, rows, n, h_in, f, type, out, pool);
}

}  // namespace edgeq
