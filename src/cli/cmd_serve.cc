// edgeq serve: the OpenAI-compatible HTTP server. Listens first (so /health can say
// "loading"), then loads the model and starts the batching executor; Ctrl-C / SIGTERM
// stop it cleanly (running requests end, every slot is freed).
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "server/http.h"
#include "tokenizer/chat_template.h"

namespace edgeq::cli {
namespace {

struct ServeFlags {
  ModelFlags model;
  KvFlags kv;
  server::ServerOptions http;
  int32_t parallel = 4;
  int32_t batch = 64;
  int32_t prefill_chunk = 32;
  int32_t max_queue = 64;
  std::string alias;
  std::string chat_template;
};

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

std::string BaseName(const std::string& p) {
  std::string s = p;
  while (!s.empty() && s.back() == '/') s.pop_back();
  const size_t slash = s.find_last_of('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

int Run(ServeFlags& f) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that disconnects is an error on write, not a signal
  std::signal(SIGINT, OnSignal);  // Ctrl-C / SIGTERM: stop cleanly (also during loading)
  std::signal(SIGTERM, OnSignal);
  server::HttpServer srv(f.http);
  Status st = srv.Bind();
  if (!st.ok()) return Fail(st);
  srv.Start();
  std::fprintf(stderr, "edgeq serve: listening on http://%s:%d (loading the model)\n", f.http.host.c_str(), srv.port());

  ApplyDefaultModel(&f.model);
  auto loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) {
    srv.Stop();
    return Fail(loaded.status());
  }
  if (g_stop) {
    srv.Stop();
    return 0;
  }
  const Model& model = *loaded->model;
  const Tokenizer& tok = *loaded->tokenizer;

  server::ApiContext ctx;
  ctx.tok = &tok;
  ctx.model_id = f.alias.empty() ? BaseName(f.model.model) : f.alias;
  const std::string& tmpl = tok.data().chat_template;
  Result<ChatStyle> style = f.chat_template.empty() ? DetectChatStyle(tmpl) : ChatStyleFromName(f.chat_template);
  if (!style.ok()) {
    if (!f.chat_template.empty() || !tmpl.empty()) {
      srv.Stop();
      return Fail(style.status());
    }
    style = ChatStyle::kPlain;
    ctx.chat_plain_fallback = true;
    std::fprintf(stderr, "edgeq serve: the model has no chat template; /v1/chat/completions uses the plain-text "
                         "fallback (system text, then each message, one per line)\n");
  }
  ctx.chat_style = *style;
  ctx.chat_extras = DetectChatExtras(tmpl);

  Scheduler::Options so;
  so.n_slots = f.parallel;
  so.n_ctx = f.model.ctx;
  so.max_batch = std::max(f.batch, f.parallel);
  so.prefill_chunk = f.prefill_chunk;
  so.n_threads = f.model.threads;
  auto kv = ToKvOptions(f.kv);
  if (!kv.ok()) {
    srv.Stop();
    return Fail(kv.status());
  }
  so.kv = *kv;
  auto sched = Scheduler::Create(model, tok, so);
  if (!sched.ok()) {
    srv.Stop();
    return Fail(sched.status());
  }
  ctx.n_ctx = (*sched)->n_ctx();
  const uint64_t kv_bytes = (*sched)->kv_bytes();
  srv.SetReady(std::make_unique<server::Executor>(std::move(sched).value(), f.max_queue), ctx, kv_bytes);
  std::fprintf(stderr,
               "edgeq serve: model '%s' ready: %d slots x %d tokens of context, KV cache %s %.1f MiB, chat template %s; "
               "serving on http://%s:%d%s\n",
               ctx.model_id.c_str(), f.parallel, ctx.n_ctx, KvOptionsName(*kv).c_str(), kv_bytes / 1048576.0, ChatStyleName(*style),
               f.http.host.c_str(), srv.port(), f.http.api_key.empty() ? "" : " (API key required)");

  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::fprintf(stderr, "edgeq serve: shutting down\n");
  srv.Stop();
  return 0;
}

}  // namespace

Command RegisterServe(CLI::App& root) {
  static ServeFlags flags;  // lives for the process
  auto* f = &flags;
  CLI::App* app = root.add_subcommand("serve", "OpenAI-compatible HTTP server with streaming and continuous batching");
  AddModelFlags(app, &f->model, true);
  AddKvFlags(app, &f->kv, false);
  app->add_option("--host", f->http.host, "address to listen on (default 127.0.0.1: this machine only)");
  app->add_option("--port", f->http.port, "port (0: any free port)")->check(CLI::Range(0, 65535));
  app->add_option("--parallel,--np", f->parallel, "parallel slots (requests generating at once)")->check(CLI::Range(1, 256));
  app->add_option("-b,--batch-size", f->batch, "max tokens per forward step")->check(CLI::Range(1, 4096));
  app->add_option("--prefill-chunk", f->prefill_chunk, "prompt tokens per step while other requests stream")
      ->check(CLI::Range(1, 4096));
  app->add_option("--max-queue", f->max_queue, "requests waiting for a slot before 503")->check(CLI::Range(0, 100000));
  app->add_option("--api-key", f->http.api_key, "require 'Authorization: Bearer KEY' on /v1 routes");
  app->add_option("--alias", f->alias, "model name clients use (default: the model's file name)");
  app->add_option("--chat-template", f->chat_template, "template style override: chatml, llama2, llama3, zephyr, phi3, gemma, plain");
  app->add_option("--max-body", f->http.max_body_bytes, "max request body in bytes (413 beyond)");
  app->add_option("--timeout", f->http.request_timeout_s, "max seconds of generation per request")->check(CLI::Range(0.1, 1e6));
  app->add_option("--read-timeout", f->http.read_timeout_s, "seconds a client may take to send its request")
      ->check(CLI::Range(1, 3600));
  app->add_option("--http-threads", f->http.http_threads, "HTTP worker threads (each open stream holds one)")
      ->check(CLI::Range(1, 1024));
  app->add_flag("!--no-log", f->http.log_requests, "no per-request log lines");
  return {app, [f] { return Run(*f); }};
}

}  // namespace edgeq::cli
