// edgeq chat: interactive chat with the model's chat template. The rendered
// conversation is re-tokenized each turn and only the part after the longest common
// prefix with the KV cache is evaluated.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "runtime/session.h"
#include "tokenizer/chat_template.h"

namespace edgeq::cli {
namespace {

struct ChatFlags {
  ModelFlags model;
  KvFlags kv;
  std::string system;
  std::string chat_template;  // style override
  int32_t n_predict = 512;
  SamplingFlags sampling;
};

int Run(ChatFlags& f) {
  ApplyDefaultModel(&f.model);
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(loaded.status());
  Model& model = *loaded->model;
  Tokenizer& tok = *loaded->tokenizer;
  Result<ChatStyle> style = f.chat_template.empty() ? DetectChatStyle(tok.data().chat_template)
                                                    : ChatStyleFromName(f.chat_template);
  if (!style.ok()) {
    if (!f.chat_template.empty() || !tok.data().chat_template.empty()) return Fail(style.status());
    style = ChatStyle::kPlain;  // model ships no template (e.g. stories260K)
    std::fprintf(stderr, "edgeq: note: the model has no chat template; using the plain-text fallback\n");
  }
  std::fprintf(stderr, "edgeq: chat template: %s. Type a message; an empty line or Ctrl-D ends the chat.\n",
               ChatStyleName(*style));
  SessionOptions so;
  so.n_ctx = f.model.ctx;
  so.n_threads = f.model.threads;
  auto kv = ToKvOptions(f.kv);
  if (!kv.ok()) return Fail(kv.status());
  so.kv = *kv;
  so.ctx_shift = f.kv.ctx_shift;
  auto session = Session::Create(model, tok, so);
  if (!session.ok()) return Fail(session.status());
  Session& s = **session;

  std::vector<ChatMessage> msgs;
  if (!f.system.empty()) msgs.push_back({"system", f.system});
  const std::string bos_text = tok.bos() >= 0 ? tok.Piece(tok.bos()) : "";
  const std::string eos_text = tok.eos() >= 0 ? tok.Piece(tok.eos()) : "";
  const SamplerParams sampler = ToSamplerParams(f.sampling);  // turn t samples with seed + t
  std::string line;
  for (int turn = 0;; ++turn) {
    std::fprintf(stderr, "\n> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line.empty()) break;
    msgs.push_back({"user", line});
    std::string rendered = ApplyChatTemplate(*style, msgs, /*add_generation_prompt=*/true, bos_text, eos_text,
                                             DetectChatExtras(tok.data().chat_template));
    std::vector<int32_t> toks = tok.Encode(rendered, /*add_special=*/true, /*parse_special=*/true);
    // Templates that spell out BOS themselves would get it twice.
    if (toks.size() >= 2 && toks[0] == tok.bos() && toks[1] == tok.bos()) toks.erase(toks.begin());
    // Reuse the cached prefix.
    size_t common = 0;
    const auto& hist = s.history();
    while (common < hist.size() && common < toks.size() && hist[common] == toks[common]) ++common;
    if (common == toks.size()) --common;  // evaluate at least one token for fresh logits
    s.Rewind(static_cast<int32_t>(common));
    std::vector<int32_t> fresh(toks.begin() + common, toks.end());
    if (s.pos() + static_cast<int64_t>(fresh.size()) >= s.n_ctx()) {
      return Fail("the conversation no longer fits in the context (" + std::to_string(s.n_ctx()) +
                  " tokens); start a new chat or raise -c");
    }
    GenerateOptions go;
    go.n_predict = f.n_predict;
    go.sampler = sampler;
    go.sampler.seed = sampler.seed + turn;
    std::string reply;
    GenerateStats stats;
    Status st = s.Generate(fresh, go, [&](const std::string& text) {
      reply += text;
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    }, &stats);
    if (!st.ok()) return Fail(st);
    std::printf("\n");
    std::fflush(stdout);
    msgs.push_back({"assistant", reply});
    if (f.model.verbose) {
      std::fprintf(stderr, "edgeq: %d tokens, %.2f tok/s, stop: %s\n", stats.n_generated,
                   stats.gen_ms > 0 ? stats.n_generated * 1000.0 / stats.gen_ms : 0.0, stats.stop_reason.c_str());
    }
  }
  return 0;
}

}  // namespace

Command RegisterChat(CLI::App& root) {
  static ChatFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("chat", "interactive chat using the model's chat template");
  AddModelFlags(app, &f->model, true);
  AddKvFlags(app, &f->kv, true);
  app->add_option("--system", f->system, "system message");
  app->add_option("--chat-template", f->chat_template,
                  "override the template style: chatml, llama2, llama3, zephyr, phi3, gemma, plain");
  app->add_option("-n,--n-predict", f->n_predict, "max tokens per reply");
  AddSamplingFlags(app, &f->sampling);
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
