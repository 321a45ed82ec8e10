#include "server/queue.h"

#include <malloc.h>

namespace edgeq::server {

bool Channel::Next(Event* e, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  *e = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Channel::OnToken(const TokenOut& t) {
  const Clock::time_point now = Clock::now();
  if (t.id >= 0) {
    if (first_token == Clock::time_point{}) {
      first_token = now;
    } else {
      itl_seconds.push_back(std::chrono::duration<double>(now - last_token_).count());
    }
    last_token_ = now;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Event e;
  e.token = t;
  events_.push_back(std::move(e));
  cv_.notify_one();
}

void Channel::OnFinish(FinishReason reason, const std::string& detail, int32_t n_prompt, int32_t n_generated) {
  n_prompt_ = n_prompt;
  n_generated_ = n_generated;
  finished_at = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Event e;
  e.finished = true;
  e.reason = reason;
  e.detail = detail;
  events_.push_back(std::move(e));
  cv_.notify_one();
}

Executor::Executor(std::unique_ptr<Scheduler> scheduler, int32_t max_queue)
    : sched_(std::move(scheduler)), max_queue_(max_queue), n_slots_(sched_->n_slots()), n_ctx_(sched_->n_ctx()) {
  thread_ = std::thread([this] { Loop(); });
}

Executor::~Executor() { Shutdown(); }

void Executor::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::shared_ptr<Channel>> Executor::Submit(TaskParams task) {
  auto ch = std::make_shared<Channel>();
  ch->submitted = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Unavailable("the server is shutting down");
    if (static_cast<int32_t>(queue_.size()) >= max_queue_) {
      return ResourceExhausted("the request queue is full (" + std::to_string(max_queue_) + " waiting)");
    }
    queue_.emplace_back(std::move(task), ch);
    queue_depth_ = static_cast<int32_t>(queue_.size());
  }
  cv_.notify_one();
  return ch;
}

void Executor::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!stop_ && queue_.empty() && sched_->active() == 0) {
        // Going idle: hand freed request memory (bodies, responses, per-thread malloc
        // arenas of the HTTP workers) back to the system, so the server's footprint
        // returns to its baseline between bursts.
        lock.unlock();
        malloc_trim(0);
        lock.lock();
      }
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || sched_->active() > 0; });
      if (stop_) break;
      while (!queue_.empty() && sched_->HasFreeSlot()) {
        auto [task, ch] = std::move(queue_.front());
        queue_.pop_front();
        if (ch->Cancelled()) {  // client left while queued
          ch->OnFinish(FinishReason::kCancelled, "cancelled while queued", 0, 0);
          continue;
        }
        Status st = sched_->Admit(std::move(task), ch);
        if (!st.ok()) ch->OnFinish(FinishReason::kError, st.message(), 0, 0);
      }
      queue_depth_ = static_cast<int32_t>(queue_.size());
    }
    sched_->Step();
    kv_used_ = sched_->kv_tokens_used();
  }
  // Shutdown: everything still queued or running ends as cancelled.
  sched_->CancelAll();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [task, ch] : queue_) ch->OnFinish(FinishReason::kCancelled, "server shutting down", 0, 0);
  queue_.clear();
}

}  // namespace edgeq::server
