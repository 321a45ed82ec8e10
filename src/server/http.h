// HTTP transport of `edgeq serve` (Debian's cpp-httplib): routes, API key, body and
// time limits, SSE streaming, OpenAI-shaped errors for everything (httplib's own 404
// and 413 included), one log line per request. The model work is behind the Executor;
// the server listens before the model is loaded (/health says "loading").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "server/api.h"
#include "server/metrics.h"
#include "server/queue.h"

namespace httplib {
class Server;
}

namespace edgeq::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port (see HttpServer::port())
  std::string api_key;                   // empty: no authentication
  size_t max_body_bytes = 1 << 20;       // larger bodies get 413
  int read_timeout_s = 30;               // a client that sends its request slower is dropped
  int write_timeout_s = 30;
  double request_timeout_s = 600;        // generation time limit per request (finish_reason "length")
  int http_threads = 0;                  // 0: 24 (each open stream holds one)
  bool log_requests = true;              // one line per request on stderr
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions opts);
  ~HttpServer();

  // Binds the listening socket (errors: address in use, bad host).
  Status Bind();
  int port() const { return port_; }
  // Serves on a background thread until Stop().
  void Start();
  // The model is loaded: requests are served from now on.
  void SetReady(std::unique_ptr<Executor> exec, ApiContext ctx, uint64_t kv_bytes);
  void Stop();
  // Blocks until the server stops (Stop() from another thread or a signal handler).
  void Wait();

 private:
  void Routes();
  void HandleGenerate(Endpoint ep, const std::string& path, const void* req, void* res);

  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Executor> exec_;
  ApiContext ctx_;
  uint64_t kv_bytes_ = 0;
  std::atomic<bool> ready_{false};
  Metrics metrics_;
  std::atomic<uint64_t> next_id_{1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace edgeq::server
