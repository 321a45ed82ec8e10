// The request queue and the executor thread: every mutex of the server lives here.
// HTTP handler threads Submit() tasks and read their Channel; one executor thread
// owns the Scheduler, admits queued tasks into free slots and runs its steps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/scheduler.h"

namespace edgeq::server {

using Clock = std::chrono::steady_clock;

// One task's results, handed from the executor thread to the HTTP thread.
class Channel : public TaskSink {
 public:
  struct Event {
    bool finished = false;
    TokenOut token;                  // when !finished
    FinishReason reason = FinishReason::kStop;  // when finished
    std::string detail;
  };
  // Waits up to `timeout` for the next event; false on timeout.
  bool Next(Event* e, std::chrono::milliseconds timeout);
  void Cancel() { cancelled_ = true; }

  // Filled as the task runs (read after the final event).
  int32_t n_prompt() const { return n_prompt_; }
  int32_t n_generated() const { return n_generated_; }
  Clock::time_point submitted;
  Clock::time_point first_token;   // zero until the first token
  Clock::time_point finished_at;

  // TaskSink (executor thread)
  void OnToken(const TokenOut& t) override;
  void OnFinish(FinishReason reason, const std::string& detail, int32_t n_prompt, int32_t n_generated) override;
  bool Cancelled() const override { return cancelled_; }

  // Time between consecutive tokens, for metrics (executor thread writes, read after finish).
  std::vector<double> itl_seconds;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int32_t> n_prompt_{0}, n_generated_{0};
  Clock::time_point last_token_;
};

class Executor {
 public:
  Executor(std::unique_ptr<Scheduler> scheduler, int32_t max_queue);
  ~Executor();  // Shutdown()
  // Stops the thread; queued and running tasks end as cancelled; Submit fails after.
  void Shutdown();

  // Queues a task. ResourceExhausted when the queue is full (the caller answers 503).
  Result<std::shared_ptr<Channel>> Submit(TaskParams task);

  int32_t queue_depth() const { return queue_depth_; }
  int32_t active_slots() const { return sched_->active(); }
  int64_t kv_tokens_used() const { return kv_used_; }
  int32_t n_slots() const { return n_slots_; }
  int32_t n_ctx() const { return n_ctx_; }
  int64_t kv_capacity_tokens() const { return static_cast<int64_t>(n_slots_) * n_ctx_; }

 private:
  void Loop();

  std::unique_ptr<Scheduler> sched_;
  const int32_t max_queue_;
  const int32_t n_slots_, n_ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<TaskParams, std::shared_ptr<Channel>>> queue_;
  bool stop_ = false;
  std::atomic<int32_t> queue_depth_{0};
  std::atomic<int64_t> kv_used_{0};
  std::thread thread_;
};

}  // namespace edgeq::server
