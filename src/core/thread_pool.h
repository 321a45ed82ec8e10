// Persistent thread pool: workers are created once and reused for every op of every
// token (no thread creation per token). The calling thread takes part in the work.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace edgeq {

class ThreadPool {
 public:
  // n_threads counts the caller: 1 means no worker threads at all.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread (the caller is index 0) and
  // waits for all. `fn` must not throw. Not reentrant.
  void Run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous `grain`-aligned chunks, one per thread, and calls
  // body(thread_index, begin, end).
  template <typename F>
  void ParallelFor(int64_t n, int64_t grain, F&& body) {
    if (n_threads_ == 1 || n <= grain) {
      body(0, int64_t{0}, n);
      return;
    }
    Run([&](int ti, int nt) {
      int64_t chunks = (n + grain - 1) / grain;
      int64_t per = (chunks + nt - 1) / nt;
      int64_t b = ti * per * grain;
      int64_t e = std::min<int64_t>(n, (ti + 1) * per * grain);
      if (b < e) body(ti, b, e);
    });
  }

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  uint64_t generation_ = 0;  // bumped per Run
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> spin_generation_{0};
  bool stop_ = false;
};

}  // namespace edgeq
