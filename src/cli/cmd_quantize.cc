// edgeq quantize: write a model in edgeq's quantized formats (see docs/quality.md).
#include <cstdio>

#include "cli/common.h"
#include "format/tensor_types.h"
#include "model/quantize.h"

namespace edgeq::cli {
namespace {

struct QuantFlags {
  ModelFlags model;
  std::string in, out;
  std::string scheme = "w4a8-g128";
  std::string outliers = "none";
  std::string calib;
  double bpw = 0;
  float alpha = 0.5f;
  int32_t calib_chunks = 16;
  bool quiet = false;
  bool gptq = false;
  bool act_order = false;
  double damp = 0.01;
};

int Run(QuantFlags& f) {
  if (!f.in.empty()) f.model.model = f.in;
  if (f.model.model.empty() || f.out.empty()) return Fail("usage: edgeq quantize IN OUT --scheme NAME");
  if (f.bpw > 0) f.scheme = "mixed-" + std::to_string(f.bpw);
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  const Model& m = *loaded->model;
  if (m.weights.wq_type() != GgmlType::kF32 && m.weights.wq_type() != GgmlType::kF16 &&
      m.weights.wq_type() != GgmlType::kBF16) {
    std::fprintf(stderr, "edgeq: note: input weights are %s: requantizing from their dequantized values "
                         "(errors add up; quantize from an f32/f16 model when you can)\n",
                 TypeName(m.weights.wq_type()));
  }
  QuantizeOptions o;
  o.scheme = f.scheme;
  o.outlier = f.outliers;
  o.smooth_alpha = f.alpha;
  o.calib_chunks = f.calib_chunks;
  o.gptq = f.gptq || f.act_order;
  o.gptq_act_order = f.act_order;
  o.gptq_damp = f.damp;
  o.n_threads = f.model.threads > 0 ? f.model.threads : 2;
  if (!f.calib.empty()) {
    auto text = ReadFileToString(f.calib);
    if (!text.ok()) return Fail(text.status());
    o.calib_text = *text;
  }
  if (!f.quiet) {
    o.progress = [](int done, int total, const std::string& what) {
      const int width = 30;
      const int filled = total > 0 ? done * width / total : 0;
      std::fprintf(stderr, "\r[%.*s%*s] %3d/%3d %-48.48s", filled, "==============================", width - filled, "",
                   done, total, what.c_str());
      std::fflush(stderr);
    };
  }
  auto r = QuantizeModel(m, *loaded->tokenizer, o, f.out);
  if (!f.quiet) std::fprintf(stderr, "\n");
  if (!r.ok()) return Fail(r.status());
  std::printf("%s", r->plan.c_str());
  std::printf("%-28s %-12s %6s %10s %12s", "tensor", "format", "bits", "rel.err", "sensitivity");
  if (o.gptq) std::printf(" %10s %10s", "H-loss RTN", "H-loss GPTQ");
  std::printf("\n");
  for (const auto& t : r->tensors) {
    char sens[32] = "-";
    if (t.sensitivity >= 0) std::snprintf(sens, sizeof sens, "%.6f", t.sensitivity);
    std::printf("%-28s %-12s %6.3f %10.5f %12s", t.name.c_str(), t.format.c_str(), t.bits_per_weight, t.rel_rmse, sens);
    if (o.gptq) {
      if (t.hessian_loss >= 0) std::printf(" %10.6f %10.6f", t.hessian_loss_rtn, t.hessian_loss);
      else std::printf(" %10s %10s", "-", "-");
    }
    std::printf("\n");
  }
  std::printf("scheme %s, outliers %s: %.3f bits per weight (matrices, counting scales), file %llu bytes -> %s\n",
              f.scheme.c_str(), f.outliers.c_str(), r->bpw, static_cast<unsigned long long>(r->file_bytes), f.out.c_str());
  return 0;
}

}  // namespace

Command RegisterQuantize(CLI::App& root) {
  static QuantFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("quantize", "quantize a model to edgeq's W8/W4 formats (GGUF out)");
  app->add_option("IN", f->in, "input model (GGUF, llama2.c .bin with -z, HF directory)");
  app->add_option("OUT", f->out, "output GGUF path");
  AddModelFlags(app, &f->model, true);
  app->add_option("--scheme", f->scheme, "w8a8, w4a8-g32, w4a8-g64, w4a8-g128, w4a8-g32a, w4a8-g128a, w4e0m4-g32, w4e0m4-g128, mixed-B");
  app->add_option("--bpw", f->bpw, "mixed precision at this average bits per weight (same as --scheme mixed-B)");
  app->add_option("--outliers", f->outliers, "outlier handling: none, smooth (needs --calib), rotate");
  app->add_option("--calib", f->calib, "calibration text file (disjoint from evaluation text)");
  app->add_option("--calib-chunks", f->calib_chunks, "calibration chunks of the model's context (max 256 tokens)");
  app->add_option("--smooth-alpha", f->alpha, "SmoothQuant migration strength")->check(CLI::Range(0.0, 1.0));
  app->add_flag("--gptq", f->gptq, "GPTQ error compensation from calibration Hessians (needs --calib)");
  app->add_flag("--act-order", f->act_order, "GPTQ with columns in decreasing Hessian-diagonal order (implies --gptq)");
  app->add_option("--gptq-damp", f->damp, "GPTQ damping, fraction of the mean Hessian diagonal")->check(CLI::Range(1e-6, 1.0));
  app->add_flag("-q,--quiet", f->quiet, "no progress bar");
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
