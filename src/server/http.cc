#include "server/http.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace edgeq::server {

using nlohmann::json;

namespace {

void SendJson(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(Dump(j), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) { SendJson(res, e.status, ErrorJson(e)); }

ApiError Overloaded(const std::string& why) { return {503, why + "; retry later", "server_error", "", "server_overloaded"}; }

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Whether fewer body bytes arrived than the request's Content-Length announced.
bool BodyIncomplete(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return false;
  const std::string v = req.get_header_value("Content-Length");
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  return end != v.c_str() && *end == 0 && n > req.body.size();
}

const char* FinishName(FinishReason r) { return r == FinishReason::kStop ? "stop" : "length"; }

}  // namespace

HttpServer::HttpServer(ServerOptions opts) : opts_(std::move(opts)), http_(std::make_unique<httplib::Server>()) {
  Routes();
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Bind() {
  if (opts_.port == 0) {
    port_ = http_->bind_to_any_port(opts_.host);
    if (port_ < 0) return IoError("cannot listen on " + opts_.host + " (any port)");
  } else {
    if (opts_.port < 0 || opts_.port > 65535) return InvalidArgument("port must be in 0..65535");
    if (!http_->bind_to_port(opts_.host, opts_.port)) {
      return IoError("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                     " (address in use, or not an address of this machine)");
    }
    port_ = opts_.port;
  }
  return Status::Ok();
}

void HttpServer::Start() {
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  // httplib's stop() does nothing until the listen loop has started (is_running), so a
  // Stop() right after Start() (a model that fails to load) would be lost and the join
  // would wait forever: return only once the loop runs (bounded; it starts at once).
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::SetReady(std::unique_ptr<Executor> exec, ApiContext ctx, uint64_t kv_bytes) {
  exec_ = std::move(exec);
  ctx_ = std::move(ctx);
  kv_bytes_ = kv_bytes;
  ready_.store(true, std::memory_order_release);
}

void HttpServer::Stop() {
  if (exec_) exec_->Shutdown();  // running requests end as cancelled; handlers return
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Wait() {
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Routes() {
  httplib::Server& s = *http_;
  const int threads = opts_.http_threads > 0 ? opts_.http_threads : 24;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_payload_max_length(opts_.max_body_bytes);
  s.set_read_timeout(opts_.read_timeout_s, 0);
  s.set_write_timeout(opts_.write_timeout_s, 0);
  s.set_keep_alive_timeout(5);
  s.set_tcp_nodelay(true);

  // API key: every /v1 route (health and metrics stay open for probes).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opts_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + opts_.api_key) return httplib::Server::HandlerResponse::Unhandled;
    SendError(res, {401, auth.empty() ? "Missing API key: send 'Authorization: Bearer <key>'" : "Incorrect API key provided",
                    "invalid_request_error", "", "invalid_api_key"});
    metrics_.CountRequest(req.path, 401);
    if (opts_.log_requests) std::fprintf(stderr, "edgeq serve: %s %s 401\n", req.method.c_str(), req.path.c_str());
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors httplib produces itself (unknown path, body too large, bad request line).
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError e{res.status, "", res.status >= 500 ? "server_error" : "invalid_request_error", "", ""};
    if (res.status == 404) {
      e.message = "Unknown endpoint: " + req.method + " " + req.path;
      e.code = "unknown_url";
    } else if (res.status == 413) {
      e.message = "The request body is larger than the server's limit of " + std::to_string(opts_.max_body_bytes) +
                  " bytes";
    } else if (res.status == 405) {
      e.message = "Method " + req.method + " is not allowed on " + req.path;
    } else if (res.status == 400 && BodyIncomplete(req)) {
      // httplib answers 400 when reading the body fails; a body shorter than its
      // Content-Length means the client stalled past the read timeout.
      res.status = 408;
      e.status = 408;
      e.message = "The request body did not arrive within the server's read timeout of " +
                  std::to_string(opts_.read_timeout_s) + " s";
      e.code = "request_timeout";
    } else {
      e.message = "Bad request: malformed or incomplete request line or headers";
    }
    // A request that could not be read leaves the connection in an unknown state (and a
    // stalling client would otherwise hold its worker for the keep-alive time too).
    if (res.status == 400 || res.status == 408 || res.status == 413) res.set_header("Connection", "close");
    res.set_content(Dump(ErrorJson(e)), "application/json");
    metrics_.CountRequest(req.path, res.status);
    if (opts_.log_requests) std::fprintf(stderr, "edgeq serve: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SendError(res, {500, "internal error: " + what, "server_error", "", ""});
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (!ready_.load(std::memory_order_acquire)) {
      SendJson(res, 503, {{"status", "loading"}});
      return;
    }
    const bool busy = exec_->active_slots() >= exec_->n_slots() && exec_->queue_depth() > 0;
    SendJson(res, 200, {{"status", busy ? "busy" : "ok"},
                        {"slots_idle", exec_->n_slots() - exec_->active_slots()},
                        {"slots_processing", exec_->active_slots()},
                        {"queue_depth", exec_->queue_depth()}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    Gauges g;
    g.ready = ready_.load(std::memory_order_acquire);
    if (g.ready) {
      g.queue_depth = exec_->queue_depth();
      g.slots_active = exec_->active_slots();
      g.slots_total = exec_->n_slots();
      g.kv_used_tokens = exec_->kv_tokens_used();
      g.kv_capacity_tokens = exec_->kv_capacity_tokens();
      g.kv_bytes = kv_bytes_;
    }
    res.set_content(metrics_.Render(g), "text/plain; version=0.0.4");
  });
  auto models = [this](const httplib::Request& req, httplib::Response& res) {
    if (!ready_.load(std::memory_order_acquire)) {
      SendError(res, {503, "the model is still loading", "server_error", "", "model_loading"});
    } else if (req.matches.size() > 1) {
      const std::string id = req.matches[1];
      if (id == ctx_.model_id) {
        SendJson(res, 200, ModelResponse(ctx_, Now()));
      } else {
        SendError(res, {404, "The model '" + id + "' does not exist", "invalid_request_error", "model", "model_not_found"});
      }
    } else {
      SendJson(res, 200, ModelsResponse(ctx_, Now()));
    }
    metrics_.CountRequest("/v1/models", res.status);
    if (opts_.log_requests) std::fprintf(stderr, "edgeq serve: GET %s %d\n", req.path.c_str(), res.status);
  };
  s.Get("/v1/models", models);
  s.Get(R"(/v1/models/(.+))", models);
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Endpoint::kChat, "/v1/chat/completions", &req, &res);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Endpoint::kCompletion, "/v1/completions", &req, &res);
  });
}

namespace {

// Everything a streaming response needs after the handler has returned.
struct StreamState {
  ParsedRequest r;
  std::shared_ptr<Channel> ch;
  std::string id;
  int64_t created = 0;
  bool first = true;
  bool done = false;
  bool timed_out = false;
  FinishReason reason = FinishReason::kStop;
  std::string detail;
  Clock::time_point last_write;
};

}  // namespace

void HttpServer::HandleGenerate(Endpoint ep, const std::string& path, const void* req_p, void* res_p) {
  const auto& req = *static_cast<const httplib::Request*>(req_p);
  auto& res = *static_cast<httplib::Response*>(res_p);
  auto log_error = [&](const ApiError& e) {
    SendError(res, e);
    metrics_.CountRequest(path, e.status);
    if (opts_.log_requests) {
      std::fprintf(stderr, "edgeq serve: POST %s %d %s\n", path.c_str(), e.status, e.message.substr(0, 200).c_str());
    }
  };
  if (!ready_.load(std::memory_order_acquire)) {
    log_error({503, "the model is still loading; retry shortly", "server_error", "", "model_loading"});
    res.set_header("Retry-After", "1");
    return;
  }
  ParsedRequest r;
  ApiError err;
  if (!ParseRequest(ep, req.body, ctx_, &r, &err)) {
    log_error(err);
    return;
  }
  const int32_t n_prompt = static_cast<int32_t>(r.task.prompt.size());
  auto submitted = exec_->Submit(r.task);
  if (!submitted.ok()) {
    res.set_header("Retry-After", "1");
    log_error(Overloaded(submitted.status().message()));
    return;
  }
  std::shared_ptr<Channel> ch = *submitted;
  const std::string id = (ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(Now()) + "-" +
                         std::to_string(next_id_.fetch_add(1));
  const int64_t created = Now();
  const Clock::time_point deadline =
      ch->submitted + std::chrono::microseconds(static_cast<int64_t>(opts_.request_timeout_s * 1e6));

  // Called once the task has finished: metrics and the request's log line.
  auto account = [this, path, n_prompt](const Channel& c, FinishReason reason, bool timed_out, const std::string& how) {
    metrics_.CountTokens(c.n_prompt(), c.n_generated());
    if (c.first_token != Clock::time_point{}) metrics_.ObserveTtft(Seconds(c.submitted, c.first_token));
    metrics_.ObserveItl(c.itl_seconds);
    if (!opts_.log_requests) return;
    const double total = Seconds(c.submitted, Clock::now());
    const double gen_s = c.first_token != Clock::time_point{} ? Seconds(c.first_token, c.finished_at) : 0;
    std::fprintf(stderr,
                 "edgeq serve: POST %s %s prompt=%d gen=%d ttft=%.1fms %.1f tok/s total=%.2fs finish=%s%s\n",
                 path.c_str(), how.c_str(), n_prompt, c.n_generated(),
                 c.first_token != Clock::time_point{} ? 1000 * Seconds(c.submitted, c.first_token) : 0.0,
                 gen_s > 0 ? (c.n_generated() - 1) / gen_s : 0.0, total,
                 reason == FinishReason::kCancelled ? "cancelled" : FinishName(reason), timed_out ? " (timeout)" : "");
  };

  if (!r.stream) {
    std::string text;
    std::vector<TokenOut> tokens;
    Channel::Event e;
    bool timed_out = false;
    for (;;) {
      if (!ch->Next(&e, std::chrono::milliseconds(100))) {
        if (!timed_out && Clock::now() > deadline) {
          timed_out = true;
          ch->Cancel();
        }
        continue;
      }
      if (e.finished) break;
      text += e.token.text;
      if (r.logprobs && e.token.id >= 0) tokens.push_back(std::move(e.token));
    }
    if (e.reason == FinishReason::kError || (e.reason == FinishReason::kCancelled && !timed_out)) {
      account(*ch, e.reason, timed_out, "500");
      log_error({e.reason == FinishReason::kError ? 500 : 503, "generation failed: " + e.detail, "server_error", "", ""});
      return;
    }
    const char* finish = timed_out ? "length" : FinishName(e.reason);
    const json body = ep == Endpoint::kChat
                          ? ChatResponse(r, id, created, text, finish, ch->n_prompt(), ch->n_generated(), tokens, *ctx_.tok)
                          : CompletionResponse(r, id, created, text, finish, ch->n_prompt(), ch->n_generated(), tokens,
                                               *ctx_.tok);
    SendJson(res, 200, body);
    metrics_.CountRequest(path, 200);
    account(*ch, e.reason, timed_out, "200");
    return;
  }

  // Streaming: Server-Sent Events, one chunk per released piece of text.
  auto st = std::make_shared<StreamState>();
  st->r = std::move(r);
  st->ch = ch;
  st->id = id;
  st->created = created;
  st->last_write = Clock::now();
  metrics_.CountRequest(path, 200);
  const Tokenizer* tok = ctx_.tok;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st, deadline, tok, ep](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& j) {
          const std::string line = "data: " + Dump(j) + "\n\n";
          st->last_write = Clock::now();
          return sink.write(line.data(), line.size());
        };
        Channel::Event e;
        if (!st->ch->Next(&e, std::chrono::milliseconds(100))) {
          if (!st->timed_out && Clock::now() > deadline) {
            st->timed_out = true;
            st->ch->Cancel();
          }
          // Idle (queued, or a long prefill): an SSE comment both keeps proxies from timing
          // out and finds clients that went away.
          if (Seconds(st->last_write, Clock::now()) > 1.0) {
            st->last_write = Clock::now();
            static const char kPing[] = ": keep-alive\n\n";
            if (!sink.write(kPing, sizeof(kPing) - 1)) {
              st->ch->Cancel();
              return false;
            }
          }
          return true;
        }
        if (!e.finished) {
          const TokenOut* lp = e.token.id >= 0 ? &e.token : nullptr;
          if (e.token.text.empty() && !(st->r.logprobs && lp)) return true;
          const bool ok = ep == Endpoint::kChat
                              ? send(ChatChunk(st->r, st->id, st->created, e.token.text, st->first, nullptr, lp, *tok))
                              : send(CompletionChunk(st->r, st->id, st->created, e.token.text, nullptr, lp, *tok));
          st->first = false;
          if (!ok) st->ch->Cancel();  // client gone: the slot is freed at the next step
          return ok;
        }
        st->done = true;
        st->reason = e.reason;
        st->detail = e.detail;
        bool ok = true;
        if (e.reason == FinishReason::kError || (e.reason == FinishReason::kCancelled && !st->timed_out)) {
          ok = send(ErrorJson({500, "generation failed: " + e.detail, "server_error", "", ""}));
        } else {
          const char* finish = st->timed_out ? "length" : FinishName(e.reason);
          ok = ep == Endpoint::kChat ? send(ChatChunk(st->r, st->id, st->created, "", st->first, finish, nullptr, *tok))
                                     : send(CompletionChunk(st->r, st->id, st->created, "", finish, nullptr, *tok));
          if (ok && st->r.include_usage) {
            ok = send(UsageChunk(st->r, st->id, st->created, st->ch->n_prompt(), st->ch->n_generated()));
          }
        }
        static const char kDone[] = "data: [DONE]\n\n";
        if (ok) ok = sink.write(kDone, sizeof(kDone) - 1);
        if (ok) sink.done();
        return ok;
      },
      [st, account](bool) {
        // Runs when the response ends, finished or not: a client that left cancels its
        // task; the log line waits for the task's end so its figures are final.
        if (!st->done) {
          st->ch->Cancel();
          // Wait for the task's end event: until it, the executor thread still writes the
          // channel's figures (itl_seconds, first_token, finished_at) that account() reads
          // (TSan found the race when one wait of 1 s timed out under load). The executor
          // ends a cancelled task at its next step, and every task at shutdown.
          Channel::Event e;
          const Clock::time_point give_up = Clock::now() + std::chrono::seconds(60);
          bool finished = false;
          while (!finished && Clock::now() < give_up) {
            if (st->ch->Next(&e, std::chrono::milliseconds(1000)) && e.finished) {
              st->reason = e.reason;
              finished = true;
            }
          }
          if (!finished) return;  // no end within 60 s: leave its figures out of the metrics
        }
        account(*st->ch, st->reason, st->timed_out, st->done ? "200 stream" : "200 stream (client left)");
      });
}

}  // namespace edgeq::server
