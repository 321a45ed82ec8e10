// edgeq tokenize: token ids or pieces of a text; works on vocabulary-only GGUF files.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "cli/common.h"
#include "format/gguf.h"

namespace edgeq::cli {
namespace {

struct TokFlags {
  ModelFlags model;
  std::string prompt;
  std::string file;
  bool ids = false;
  bool no_bos = false;
  bool special = false;
  bool prompt_given = false;
};

Result<TokenizerData> LoadTokenizerOnly(const ModelFlags& f) {
  struct stat st {};
  if (stat(f.model.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return TokenizerDataFromHfJson(f.model);
  ASSIGN_OR_RETURN(MappedFile mf, MappedFile::Open(f.model));
  if (mf.size() >= 4 && std::memcmp(mf.data(), "GGUF", 4) == 0) {
    ASSIGN_OR_RETURN(auto g, GgufFile::Open(f.model));
    return TokenizerDataFromGguf(*g);
  }
  if (f.model.size() > 5 && f.model.compare(f.model.size() - 5, 5, ".json") == 0) return TokenizerDataFromHfJson(f.model);
  // llama2.c: the vocabulary lives in the -z file.
  if (f.tokenizer.empty()) return InvalidArgument(f.model + ": a llama2.c checkpoint needs its tokenizer.bin (-z)");
  return TokenizerDataFromLlama2c(f.tokenizer, -1);
}

int Run(TokFlags& f) {
  ApplyDefaultModel(&f.model);
  if (!f.file.empty()) {
    auto text = ReadFileToString(f.file);
    if (!text.ok()) return Fail(text.status());
    f.prompt = *text;
  } else if (!f.prompt_given) {
    return Fail("tokenize needs a text: -p TEXT or -f FILE");
  }
  auto data = LoadTokenizerOnly(f.model);
  if (!data.ok()) return Fail(data.status());
  auto tok = Tokenizer::Create(std::move(data).value());
  if (!tok.ok()) return Fail(tok.status());
  std::vector<int32_t> ids = (*tok)->Encode(f.prompt, !f.no_bos, f.special);
  if (f.ids) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
  } else {
    for (int32_t id : ids) {
      std::printf("%6d -> '%s'\n", id, (*tok)->TokenToBytes(id, true).c_str());
    }
  }
  return 0;
}

}  // namespace

Command RegisterTokenize(CLI::App& root) {
  static TokFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("tokenize", "print the tokens of a text");
  AddModelFlags(app, &f->model, false);
  auto* p = app->add_option("-p,--prompt", f->prompt, "text to tokenize");
  app->add_option("-f,--file", f->file, "read the text from a file");
  app->add_flag("--ids", f->ids, "print only ids, space-separated on one line");
  app->add_flag("--no-bos", f->no_bos, "add no BOS/EOS");
  app->add_flag("--special", f->special, "match special-token text (e.g. <|im_start|>) as special tokens");
  app->callback([f, p] { f->prompt_given = p->count() > 0; });
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
