// edgeq convert: any supported input (GGUF, llama2.c .bin + tokenizer, HF directory)
// to a GGUF file.
#include <cstdio>

#include "cli/common.h"
#include "model/convert.h"

namespace edgeq::cli {
namespace {

struct ConvertFlags {
  ModelFlags model;
  std::string in, out;
  std::string type = "f32";
};

int Run(ConvertFlags& f) {
  if (!f.in.empty()) f.model.model = f.in;
  if (f.model.model.empty()) return Fail("convert needs an input model: edgeq convert IN OUT");
  ConvertOptions co;
  if (f.type == "f32") co.type = GgmlType::kF32;
  else if (f.type == "f16") co.type = GgmlType::kF16;
  else if (f.type == "bf16") co.type = GgmlType::kBF16;
  else if (f.type == "q8_0") co.type = GgmlType::kQ8_0;
  else if (f.type == "q4_0") co.type = GgmlType::kQ4_0;
  else return Fail("unknown --type '" + f.type + "' (f32, f16, bf16, q8_0, q4_0)");
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  co.progress = [](int i, int n, const std::string& name, const std::string& note) {
    std::fprintf(stderr, "\r[%4d/%4d] %-40s", i, n, name.c_str());
    if (!note.empty()) std::fprintf(stderr, "\n  note: %s: %s\n", name.c_str(), note.c_str());
    if (i == n) std::fprintf(stderr, "\n");
  };
  Status st = WriteModelGguf(*loaded->model, f.out, co);
  if (!st.ok()) return Fail(st);
  std::fprintf(stderr, "wrote %s (%s)\n", f.out.c_str(), f.type.c_str());
  return 0;
}

}  // namespace

Command RegisterConvert(CLI::App& root) {
  static ConvertFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("convert", "convert a model (GGUF, llama2.c, HF directory) to GGUF");
  app->add_option("IN", f->in, "input model (or -m)");
  app->add_option("OUT", f->out, "output GGUF path")->required();
  AddModelFlags(app, &f->model, false);
  app->add_option("--type", f->type, "tensor type for matrices: f32, f16, bf16, q8_0, q4_0 (default f32)");
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
