// Persistent thread pool: workers are created once and reused for every op of every
// token (no thread creation per token). The calling thread takes part in the work.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
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

  // Tells idle workers to sleep now instead of spinning for the next job: call it when
  // the caller is about to do serial work of its own that takes longer than a spin
  // (the server's scheduler after each batched step: sampling, streaming to clients),
  // so that spinning workers do not take the cores that work and the HTTP threads need.
  // The next Run/RunShares wakes them (one futex wake). Within a forward pass, between
  // ops, workers keep spinning: a wake per op would cost more than the op.
  void Park() { parked_.store(true, std::memory_order_release); }

  // Process-wide policy (the CLI's --cpu-affinity): pools created afterwards pin thread i
  // (the creating thread is 0) to the i-th CPU this process may run on, so the scheduler
  // does not move them between cores mid-token. Off by default.
  static void SetPinThreads(bool on);

  // Runs fn(thread_index, n_threads) on every thread (the caller is index 0) and
  // waits for all. `fn` must not throw. Not reentrant. Takes any callable by reference
  // (no std::function: decode runs this per op and must not allocate).
  template <typename F>
  void Run(F&& fn) {
    RunJob(MakeJob(fn, /*strict=*/true));
  }
  // Like Run, but fn(i, n) is a share of the work rather than thread i's own task: a
  // share no worker has picked up by the time the caller finished its own is run by the
  // caller. On a machine with more runnable threads than cores a worker may not get a
  // core for milliseconds; the caller then does that share instead of spinning until the
  // worker is scheduled. Each share runs exactly once, on one thread, and `i` stays
  // unique while it runs (per-share scratch indexed by it is safe).
  template <typename F>
  void RunShares(F&& fn) {
    RunJob(MakeJob(fn, /*strict=*/false));
  }

  // Hands out [0, n) in chunks of `chunk` from a shared counter: each thread calls
  // body(thread_index, begin, end) for the chunks it claims until none are left. A thread
  // that is slowed down (another process on its core, a cache-missing stretch) takes
  // fewer chunks instead of holding up the others at the end, as a static split would.
  template <typename F>
  void ParallelForDynamic(int64_t n, int64_t chunk, F&& body) {
    if (chunk < 1) chunk = 1;
    if (n_threads_ == 1 || n <= chunk) {
      if (n > 0) body(0, int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    RunShares([&](int ti, int) {
      for (;;) {
        const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
        if (b >= n) break;
        body(ti, b, std::min<int64_t>(n, b + chunk));
      }
    });
  }

  // Like ParallelForDynamic, but a claim takes max_chunk only while plenty is left: once
  // fewer than 2 * n_threads * max_chunk indices remain, a claim takes a
  // (2 * n_threads)-th of the rest, down to min_chunk. The last chunks are small, so
  // threads finish together (the others wait at the end of every op for the slowest
  // one), while the bulk is still claimed in large chunks (few claims, long contiguous
  // runs). No claim is smaller than min_chunk (but the last), and work of at most
  // min_chunk indices runs on the caller alone: a claim and a hand-off cost about a
  // microsecond, more than a tiny op gains from a second thread.
  template <typename F>
  void ParallelForGuided(int64_t n, int64_t min_chunk, int64_t max_chunk, F&& body) {
    if (min_chunk < 1) min_chunk = 1;
    if (max_chunk < min_chunk) max_chunk = min_chunk;
    if (n_threads_ == 1 || n <= min_chunk) {
      if (n > 0) body(0, int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    const int64_t div = 2 * static_cast<int64_t>(n_threads_);
    RunShares([&](int ti, int) {
      int64_t b = next.load(std::memory_order_relaxed);
      for (;;) {
        if (b >= n) break;
        const int64_t take = std::min(n - b, std::clamp<int64_t>((n - b) / div, min_chunk, max_chunk));
        if (!next.compare_exchange_weak(b, b + take, std::memory_order_relaxed)) continue;  // b reloaded
        body(ti, b, b + take);
        b = next.load(std::memory_order_relaxed);
      }
    });
  }

  // Splits [0, n) into contiguous `grain`-aligned chunks, one per thread, and calls
  // body(thread_index, begin, end).
  template <typename F>
  void ParallelFor(int64_t n, int64_t grain, F&& body) {
    if (n_threads_ == 1 || n <= grain) {
      body(0, int64_t{0}, n);
      return;
    }
    RunShares([&](int ti, int nt) {
      int64_t chunks = (n + grain - 1) / grain;
      int64_t per = (chunks + nt - 1) / nt;
      int64_t b = ti * per * grain;
      int64_t e = std::min<int64_t>(n, (ti + 1) * per * grain);
      if (b < e) body(ti, b, e);
    });
  }

 private:
  struct Job {
    void* obj = nullptr;
    void (*call)(void*, int, int) = nullptr;
    bool strict = true;  // share i runs on thread i (Run); else on whoever claims it
  };
  template <typename F>
  static Job MakeJob(F& fn, bool strict) {
    using Fn = std::remove_reference_t<F>;
    return Job{const_cast<void*>(static_cast<const void*>(&fn)),
               [](void* o, int i, int n) { (*static_cast<Fn*>(o))(i, n); }, strict};
  }
  void RunJob(Job job);
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  Job job_;
  uint64_t generation_ = 0;  // bumped per Run
  int next_share_ = 1;       // next unclaimed share of a non-strict job (under mu_)
  std::atomic<int> pending_{0};  // shares 1..n-1 not finished yet
  std::atomic<uint64_t> spin_generation_{0};
  std::atomic<bool> parked_{false};  // Park() was called and no job has run since
  bool stop_ = false;
};

}  // namespace edgeq
