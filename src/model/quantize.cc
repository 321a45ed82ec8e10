#include "model/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <sys/stat.h>

#include "format/tensor_types.h"
#include "model/calibrate.h"
#include "model/convert.h"
#include "model/gptq.h"
#include "model/llama.h"
#include "model/transforms.h"

namespace edgeq {
namespace {

struct Scheme {
  std::string matrix_format;  // layer matrices
  std::string embed_format;   // token embedding (and tied output head)
  std::string output_format;  // untied output head
  double mixed_bpw = 0;       // > 0: mixed precision at this average
};

Result<Scheme> ParseScheme(const std::string& name) {
  Scheme s;
  // Token embedding / output head: 8 bits per channel for every sub-8-bit scheme. They
  // are the largest single tensors of small models and the output head is the most
  // sensitive matrix (its error lands directly on the logits); see docs/quality.md.
  s.embed_format = "w8c";
  s.output_format = "w8c";
  if (name == "w8a8") {
    s.matrix_format = "w8c";
  } else if (name.rfind("w4a8-", 0) == 0) {
    s.matrix_format = "w4" + name.substr(5);  // w4a8-g32 -> w4g32, w4a8-g128a -> w4g128a
  } else if (name.rfind("w4e0m4-", 0) == 0) {
    s.matrix_format = "e0m4" + name.substr(7);  // w4e0m4-g32 -> e0m4g32 (weight-only, float activations)
  } else if (name.rfind("mixed-", 0) == 0) {
    char* end = nullptr;
    s.mixed_bpw = std::strtod(name.c_str() + 6, &end);
    if (end == name.c_str() + 6 || *end != 0 || s.mixed_bpw < 4.0 || s.mixed_bpw > 8.5) {
      return InvalidArgument("scheme '" + name + "': mixed-B needs 4 <= B <= 8.5 bits per weight");
    }
    s.matrix_format = "w4g32";
  } else {
    return InvalidArgument("unknown scheme '" + name + "' (w8a8, w4a8-g32, w4a8-g64, w4a8-g128, w4a8-g32a, "
                           "w4a8-g128a, w4e0m4-g32, w4e0m4-g64, w4e0m4-g128, mixed-B e.g. mixed-4.5)");
  }
  ASSIGN_OR_RETURN(GgmlType t, TypeByName(s.matrix_format));
  (void)t;
  return s;
}

struct MatrixRef {
  std::string name;
  DenseMatrix* m;
  bool is_embedding;
};

std::vector<MatrixRef> Matrices(DenseModel* d) {
  std::vector<MatrixRef> out;
  out.push_back({"token_embd.weight", &d->token_embd, true});
  if (!d->output.w.empty()) out.push_back({"output.weight", &d->output, true});
  for (size_t i = 0; i < d->layers.size(); ++i) {
    DenseLayer& L = d->layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    out.push_back({p + "attn_q.weight", &L.wq, false});
    out.push_back({p + "attn_k.weight", &L.wk, false});
    out.push_back({p + "attn_v.weight", &L.wv, false});
    out.push_back({p + "attn_output.weight", &L.wo, false});
    out.push_back({p + "ffn_gate.weight", &L.w_gate, false});
    out.push_back({p + "ffn_up.weight", &L.w_up, false});
    out.push_back({p + "ffn_down.weight", &L.w_down, false});
  }
  return out;
}

// Quantizes a dense matrix into owned bytes; returns the Tensor2D view and error stats.
struct Encoded {
  std::vector<uint8_t> bytes;
  Tensor2D view;
  double rel_rmse = 0;
};

Result<Encoded> Encode(const DenseMatrix& m, GgmlType type) {
  Encoded e;
  ASSIGN_OR_RETURN(uint64_t rb, RowBytes(type, m.cols));
  e.bytes.resize(rb * m.rows);
  std::vector<float> back(m.cols);
  double err = 0, norm = 0;
  for (int64_t r = 0; r < m.rows; ++r) {
    const float* src = m.w.data() + r * m.cols;
    RETURN_IF_ERROR(EncodeRow(type, src, e.bytes.data() + r * rb, m.cols));
    RETURN_IF_ERROR(DecodeRow(type, e.bytes.data() + r * rb, back.data(), m.cols));
    for (int64_t j = 0; j < m.cols; ++j) {
      err += (back[j] - src[j]) * static_cast<double>(back[j] - src[j]);
      norm += static_cast<double>(src[j]) * src[j];
    }
  }
  e.rel_rmse = norm > 0 ? std::sqrt(err / norm) : 0;
  e.view.type = type;
  e.view.rows = m.rows;
  e.view.cols = m.cols;
  e.view.row_bytes = rb;
  return e;
}

// Quantize-dequantize in place (for sensitivity measurement).
Status FakeQuant(DenseMatrix* m, GgmlType type) {
  ASSIGN_OR_RETURN(Encoded e, Encode(*m, type));
  for (int64_t r = 0; r < m->rows; ++r) RETURN_IF_ERROR(DecodeRow(type, e.bytes.data() + r * e.view.row_bytes, m->row(r), m->cols));
  return Status::Ok();
}

// Mean KL(base || model) over the calibration chunks' tokens.
class KldMeter {
 public:
  KldMeter(const std::vector<int32_t>& tokens, int32_t n_ctx, int32_t chunks, int32_t threads)
      : tokens_(tokens), n_ctx_(n_ctx), chunks_(chunks), pool_(threads) {}

  Status SetBase(const Model& m) {
    ASSIGN_OR_RETURN(base_, Run(m));
    return Status::Ok();
  }

  Result<double> Kld(const Model& m) {
    ASSIGN_OR_RETURN(std::vector<float> q, Run(m));
    const int64_t V = m.config.vocab_size, n = static_cast<int64_t>(q.size()) / V;
    double sum = 0;
    for (int64_t t = 0; t < n; ++t) sum += Kl(base_.data() + t * V, q.data() + t * V, V);
    return sum / n;
  }

 private:
  static double Kl(const float* p_logits, const float* q_logits, int64_t V) {
    double mp = *std::max_element(p_logits, p_logits + V), mq = *std::max_element(q_logits, q_logits + V);
    double zp = 0, zq = 0;
    for (int64_t i = 0; i < V; ++i) {
      zp += std::exp(p_logits[i] - mp);
      zq += std::exp(q_logits[i] - mq);
    }
    const double lzp = std::log(zp) + mp, lzq = std::log(zq) + mq;
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double lp = p_logits[i] - lzp, lq = q_logits[i] - lzq;
      kl += std::exp(lp) * (lp - lq);
    }
    return std::max(kl, 0.0);
  }

  Result<std::vector<float>> Run(const Model& m) {
    ASSIGN_OR_RETURN(auto g, LlamaGraph::Create(m, n_ctx_, 64, &pool_));
    const int64_t V = m.config.vocab_size;
    std::vector<float> all(static_cast<size_t>(chunks_) * n_ctx_ * V);
    for (int32_t c = 0; c < chunks_; ++c) {
      RETURN_IF_ERROR(g->Forward(tokens_.data() + static_cast<int64_t>(c) * n_ctx_, n_ctx_, 0, true,
                                 all.data() + static_cast<int64_t>(c) * n_ctx_ * V));
    }
    return all;
  }

  const std::vector<int32_t>& tokens_;
  int32_t n_ctx_, chunks_;
  ThreadPool pool_;
  std::vector<float> base_;
};

}  // namespace

Result<std::unique_ptr<Model>> QuantizeInMemory(const Model& model, const std::string& scheme_name, int32_t n_threads) {
  ASSIGN_OR_RETURN(Scheme scheme, ParseScheme(scheme_name));
  if (scheme.mixed_bpw > 0) return InvalidArgument("mixed schemes need calibration: use edgeq quantize");
  ASSIGN_OR_RETURN(GgmlType fmt_matrix, TypeByName(scheme.matrix_format));
  ASSIGN_OR_RETURN(GgmlType fmt_embed, TypeByName(scheme.embed_format));
  auto out = std::make_unique<Model>();
  out->config = model.config;
  out->tokenizer_data = model.tokenizer_data;
  out->rope_freq_factors = model.rope_freq_factors;
  out->path = model.path;
  out->format = model.format + "+" + scheme_name;
  out->weights = model.weights;  // vectors point into `model` (it must outlive `out`)
  ThreadPool pool(n_threads > 0 ? n_threads : 2);
  Status status;
  auto convert = [&](Tensor2D* t, GgmlType type) {
    if (!status.ok() || t->empty()) return;
    auto rb = RowBytes(type, t->cols);
    if (!rb.ok()) {
      status = rb.status();
      return;
    }
    auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[*rb * t->rows]);
    const Tensor2D src = *t;
    std::atomic<bool> failed{false};
    pool.ParallelFor(src.rows, 16, [&](int tid, int64_t r0, int64_t r1) {
      std::vector<float> row(src.cols);
      for (int64_t r = r0; r < r1; ++r) {
        GetRowF32(src, r, row.data());
        if (!EncodeRow(type, row.data(), buf.get() + r * *rb, src.cols).ok()) failed = true;
      }
    });
    if (failed) {
      status = Internal("quantizing a matrix failed");
      return;
    }
    out->keep_alive.push_back(std::shared_ptr<const void>(buf, buf.get()));
    t->type = type;
    t->data = buf.get();
    t->row_bytes = *rb;
    t->packed = nullptr;  // RepackForKernels below
  };
  ModelWeights& w = out->weights;
  const bool tied = model.config.tied_embeddings;
  convert(&w.token_embd, fmt_embed);
  if (tied) w.output = w.token_embd;
  else convert(&w.output, fmt_embed);
  for (auto& l : w.layers) {
    for (Tensor2D* t : l.Matrices()) convert(t, fmt_matrix);
  }
  RETURN_IF_ERROR(status);
  RETURN_IF_ERROR(RepackForKernels(out.get()));
  return out;
}

Result<QuantizeReport> QuantizeModel(const Model& model, const Tokenizer& tok, const QuantizeOptions& opts,
                                     const std::string& out_path) {
  ASSIGN_OR_RETURN(Scheme scheme, ParseScheme(opts.scheme));
  if (opts.outlier != "none" && opts.outlier != "smooth" && opts.outlier != "rotate") {
    return InvalidArgument("unknown outlier method '" + opts.outlier + "' (none, smooth, rotate)");
  }
  const bool needs_calib = opts.outlier == "smooth" || scheme.mixed_bpw > 0 || opts.gptq;
  if (needs_calib && opts.calib_text.empty()) {
    return InvalidArgument("scheme '" + opts.scheme + "' with outlier method '" + opts.outlier + "'" +
                           (opts.gptq ? " and GPTQ" : "") + " needs calibration text (--calib FILE)");
  }
  if (opts.gptq && !(opts.gptq_damp > 0 && opts.gptq_damp <= 1)) {
    return InvalidArgument("GPTQ damping must be in (0, 1], got " + std::to_string(opts.gptq_damp));
  }
  auto say = [&](int done, int total, const std::string& what) {
    if (opts.progress) opts.progress(done, total, what);
  };
  const int32_t calib_ctx = std::min(model.config.context_length, opts.calib_ctx > 0 ? opts.calib_ctx : 256);
  std::vector<int32_t> calib_tokens;
  int32_t calib_chunks = 0;
  if (needs_calib) {
    calib_tokens = tok.Encode(opts.calib_text, true, false);
    calib_chunks = std::min<int64_t>(opts.calib_chunks, static_cast<int64_t>(calib_tokens.size()) / calib_ctx);
    if (calib_chunks <= 0) return InvalidArgument("calibration text is shorter than one chunk of " + std::to_string(calib_ctx) + " tokens");
    for (int32_t c = 0; c < calib_chunks; ++c) {
      if (tok.bos() >= 0 && tok.data().add_bos) calib_tokens[static_cast<int64_t>(c) * calib_ctx] = tok.bos();
    }
  }

  DenseModel d = Densify(model);
  QuantizeReport report;
  if (opts.outlier == "smooth") {
    say(0, 1, "calibrating activations");
    ASSIGN_OR_RETURN(ActivationStats stats, CollectActivationStats(model, tok, opts.calib_text, calib_ctx,
                                                                   calib_chunks, opts.n_threads));
    ApplySmoothing(&d, stats, opts.smooth_alpha);
    report.plan += "outliers: SmoothQuant scaling, alpha " + std::to_string(opts.smooth_alpha) + "\n";
  } else if (opts.outlier == "rotate") {
    ApplyBlockRotation(&d);
    report.plan += "outliers: block Hadamard rotation (32) of every layer matrix input\n";
  }

  std::vector<MatrixRef> mats = Matrices(&d);
  std::vector<GgmlType> chosen(mats.size());
  std::vector<double> sens(mats.size(), -1);
  ASSIGN_OR_RETURN(GgmlType fmt_matrix, TypeByName(scheme.matrix_format));
  ASSIGN_OR_RETURN(GgmlType fmt_embed, TypeByName(scheme.embed_format));
  ASSIGN_OR_RETURN(GgmlType fmt_output, TypeByName(scheme.output_format));
  ASSIGN_OR_RETURN(GgmlType fmt_w8, TypeByName("w8c"));
  for (size_t i = 0; i < mats.size(); ++i) {
    chosen[i] = mats[i].is_embedding ? (mats[i].name == "output.weight" ? fmt_output : fmt_embed) : fmt_matrix;
  }

  if (scheme.mixed_bpw > 0) {
    // Sensitivity: KLD against the (transformed) fp32 model when only this matrix is
    // quantized to 4 bits. Then upgrade the most sensitive matrices to 8 bits per
    // channel, most sensitive per extra bit first, while the average stays in budget.
    auto view = ModelView(d);
    KldMeter meter(calib_tokens, calib_ctx, std::min(calib_chunks, 4), opts.n_threads);
    RETURN_IF_ERROR(meter.SetBase(*view));
    for (size_t i = 0; i < mats.size(); ++i) {
      if (mats[i].is_embedding) continue;
      say(static_cast<int>(i), static_cast<int>(mats.size()), "sensitivity " + mats[i].name);
      DenseMatrix saved = *mats[i].m;
      RETURN_IF_ERROR(FakeQuant(mats[i].m, fmt_matrix));
      auto probe = ModelView(d);
      ASSIGN_OR_RETURN(sens[i], meter.Kld(*probe));
      *mats[i].m = std::move(saved);
    }
    double total_w = 0, total_bits = 0;
    for (size_t i = 0; i < mats.size(); ++i) {
      const double n = static_cast<double>(mats[i].m->rows) * mats[i].m->cols;
      total_w += n;
      total_bits += n * BitsPerWeight(chosen[i], mats[i].m->cols);
    }
    std::vector<size_t> order;
    for (size_t i = 0; i < mats.size(); ++i) {
      if (!mats[i].is_embedding) order.push_back(i);
    }
    auto gain = [&](size_t i) {
      const double n = static_cast<double>(mats[i].m->rows) * mats[i].m->cols;
      return sens[i] / (n * (BitsPerWeight(fmt_w8, mats[i].m->cols) - BitsPerWeight(fmt_matrix, mats[i].m->cols)));
    };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return gain(a) > gain(b); });
    for (size_t i : order) {
      const double n = static_cast<double>(mats[i].m->rows) * mats[i].m->cols;
      const double extra = n * (BitsPerWeight(fmt_w8, mats[i].m->cols) - BitsPerWeight(fmt_matrix, mats[i].m->cols));
      if ((total_bits + extra) / total_w <= scheme.mixed_bpw) {
        chosen[i] = fmt_w8;
        total_bits += extra;
      }
    }
    report.plan += "mixed precision: " + std::to_string(scheme.mixed_bpw) + " bpw budget, 4-bit " +
                   scheme.matrix_format + " base, sensitive matrices upgraded to w8c\n";
  }

  // GPTQ: Hessians of every matrix input, from the transformed fp32 model on the
  // calibration text (the inputs the quantized matrices will see, before their own error).
  HessianStats hessians;
  if (opts.gptq) {
    say(0, static_cast<int>(mats.size()), "GPTQ: calibration Hessians");
    auto view = ModelView(d);
    ASSIGN_OR_RETURN(hessians, CollectInputHessians(*view, calib_tokens, calib_ctx, calib_chunks, opts.n_threads));
    report.plan += "GPTQ: Hessians from " + std::to_string(calib_chunks) + " calibration chunks of " +
                   std::to_string(calib_ctx) + " tokens, damping " + std::to_string(opts.gptq_damp) +
                   (opts.gptq_act_order ? ", act-order (static groups)" : ", natural order") + "\n";
  }
  auto hessian_for = [&](const std::string& nm) -> const InputHessian* {
    if (!opts.gptq || nm.rfind("blk.", 0) != 0) return nullptr;
    const int32_t layer = static_cast<int32_t>(std::stol(nm.substr(4)));
    const std::string kind = nm.substr(nm.find('.', 4) + 1);
    const char* key = kind == "attn_output.weight" ? "attn_out"
                    : kind == "ffn_down.weight"     ? "ffn_mid"
                    : kind.rfind("ffn_", 0) == 0    ? "ffn_in"
                                                    : "attn_in";
    auto it = hessians.find({layer, key});
    return it == hessians.end() ? nullptr : &it->second;
  };
  ThreadPool gptq_pool(opts.gptq ? std::max(1, opts.n_threads) : 1);
  GptqFactor factor;  // of the input `factor_of`, reused while the next matrix shares it
  const InputHessian* factor_of = nullptr;

  // Quantize everything into a new Model that owns its bytes, then write it.
  auto out = ModelView(d);
  std::vector<std::unique_ptr<Encoded>> keep;
  double bits = 0, weights = 0;
  for (size_t i = 0; i < mats.size(); ++i) {
    say(static_cast<int>(i + 1), static_cast<int>(mats.size()), "quantize " + mats[i].name);
    ASSIGN_OR_RETURN(Encoded e, Encode(*mats[i].m, chosen[i]));
    double h_loss = -1, h_loss_rtn = -1;
    if (const InputHessian* ih = hessian_for(mats[i].name)) {
      if (ih->dim != mats[i].m->cols) return Internal("GPTQ: Hessian of " + mats[i].name + " has the wrong size");
      ASSIGN_OR_RETURN(h_loss_rtn, HessianLoss(mats[i].m->w.data(), mats[i].m->rows, mats[i].m->cols, ih->h, chosen[i],
                                               e.bytes.data()));
      if (ih != factor_of) {  // q/k/v and gate/up come in a row and share their input's factor
        GptqOptions go;
        go.damp = opts.gptq_damp;
        go.act_order = opts.gptq_act_order;
        ASSIGN_OR_RETURN(factor, GptqFactorize(ih->h, ih->dim, go));
        factor_of = ih;
        ++report.gptq_factorizations;
      }
      ASSIGN_OR_RETURN(h_loss, GptqQuantizeFactored(mats[i].m->w.data(), mats[i].m->rows, mats[i].m->cols, ih->h,
                                                    factor, chosen[i], e.bytes.data(), &gptq_pool));
      ++report.gptq_matrices;
      std::vector<float> back(mats[i].m->cols);
      double err = 0, norm = 0;
      for (int64_t r = 0; r < mats[i].m->rows; ++r) {
        RETURN_IF_ERROR(DecodeRow(chosen[i], e.bytes.data() + r * e.view.row_bytes, back.data(), mats[i].m->cols));
        const float* src = mats[i].m->row(r);
        for (int64_t j = 0; j < mats[i].m->cols; ++j) {
          err += (back[j] - src[j]) * static_cast<double>(back[j] - src[j]);
          norm += static_cast<double>(src[j]) * src[j];
        }
      }
      e.rel_rmse = norm > 0 ? std::sqrt(err / norm) : 0;
    }
    auto holder = std::make_unique<Encoded>(std::move(e));
    holder->view.data = holder->bytes.data();
    TensorReport tr;
    tr.name = mats[i].name;
    tr.format = TypeName(chosen[i]);
    tr.bits_per_weight = 8.0 * holder->view.row_bytes / mats[i].m->cols;
    tr.rel_rmse = holder->rel_rmse;
    tr.sensitivity = sens[i];
    tr.hessian_loss = h_loss;
    tr.hessian_loss_rtn = h_loss_rtn;
    report.tensors.push_back(tr);
    const double n = static_cast<double>(mats[i].m->rows) * mats[i].m->cols;
    weights += n;
    bits += n * tr.bits_per_weight;
    // Bind into the output model.
    ModelWeights& w = out->weights;
    const std::string& nm = mats[i].name;
    if (nm == "token_embd.weight") {
      w.token_embd = holder->view;
      if (out->config.tied_embeddings) w.output = holder->view;
    } else if (nm == "output.weight") {
      w.output = holder->view;
    } else {
      const size_t layer = std::stoul(nm.substr(4));
      LayerWeights& l = w.layers[layer];
      const std::string kind = nm.substr(nm.find('.', 4) + 1);
      Tensor2D* dst = kind == "attn_q.weight" ? &l.wq : kind == "attn_k.weight" ? &l.wk : kind == "attn_v.weight" ? &l.wv
                    : kind == "attn_output.weight" ? &l.wo : kind == "ffn_gate.weight" ? &l.w_gate
                    : kind == "ffn_up.weight" ? &l.w_up : &l.w_down;
      *dst = holder->view;
    }
    keep.push_back(std::move(holder));
  }
  report.bpw = bits / weights;
  if (opts.gptq) {
    report.plan += "GPTQ: " + std::to_string(report.gptq_factorizations) + " inverse-Hessian factorizations for " +
                   std::to_string(report.gptq_matrices) + " matrices (one per shared input)\n";
  }
  ConvertOptions co;
  co.keep_types = true;
  co.extra_string_metadata = {{"edgeq.quantization.scheme", opts.scheme}, {"edgeq.quantization.outliers", opts.outlier},
                              {"edgeq.quantization.gptq", opts.gptq ? (opts.gptq_act_order ? "act-order" : "yes") : "no"}};
  RETURN_IF_ERROR(WriteModelGguf(*out, out_path, co));
  struct stat st {};
  if (stat(out_path.c_str(), &st) == 0) report.file_bytes = static_cast<uint64_t>(st.st_size);
  return report;
}

}  // namespace edgeq
