#include "core/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EDGEQ_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define EDGEQ_PAUSE() __asm__ __volatile__("yield")
#else
#define EDGEQ_PAUSE() ((void)0)
#endif

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace edgeq {

namespace {
std::atomic<bool> g_pin_threads{false};

// The CPUs this process may run on, in order (read before any thread is pinned: a new
// thread inherits the affinity of the one that creates it).
std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
#if defined(__linux__)
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
#endif
  return cpus;
}

void PinCurrentThread(const std::vector<int>& cpus, int index) {
#if defined(__linux__)
  if (cpus.empty()) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus[index % cpus.size()], &one);
  (void)pthread_setaffinity_np(pthread_self(), sizeof one, &one);  // best effort
#else
  (void)cpus;
  (void)index;
#endif
}
}  // namespace

void ThreadPool::SetPinThreads(bool on) { g_pin_threads.store(on); }

// Workers spin briefly on the generation counter before sleeping on the condition
// variable: decode runs hundreds of small ops per token, and a futex wake per op
// costs more than the op itself on small models.
static constexpr int kSpinIterations = 20000;

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  const bool pin = g_pin_threads.load() && n_threads_ > 1;
  const std::vector<int> cpus = pin ? AllowedCpus() : std::vector<int>{};
  for (int i = 1; i < n_threads_; ++i) {
    workers_.emplace_back([this, i, pin, cpus] {
      if (pin) PinCurrentThread(cpus, i);
      WorkerLoop(i);
    });
  }
  if (pin) PinCurrentThread(cpus, 0);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    ++generation_;
    spin_generation_.store(generation_, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunJob(Job job) {
  if (n_threads_ == 1) {
    job.call(job.obj, 0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = job;
    parked_.store(false, std::memory_order_relaxed);
    next_share_ = 1;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    ++generation_;
    spin_generation_.store(generation_, std::memory_order_release);
  }
  cv_.notify_all();
  job.call(job.obj, 0, n_threads_);
  if (!job.strict) {
    // Shares no worker has claimed yet: run them here rather than wait for a worker
    // that may not even be on a core.
    for (;;) {
      int share;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (next_share_ >= n_threads_) break;
        share = next_share_++;
      }
      job.call(job.obj, share, n_threads_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  // Workers that claimed a share are running it. Spin (they are on a core), but yield
  // once that takes long: one may have been preempted, and spinning keeps it off.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) {
      EDGEQ_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin first, then sleep.
    int spins = 0;
    while (spin_generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations &&
           !parked_.load(std::memory_order_acquire)) {
      EDGEQ_PAUSE();
      ++spins;
    }
    Job job;
    int share = index;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (stop_) return;
      job = job_;
      if (!job.strict) share = next_share_ < n_threads_ ? next_share_++ : -1;  // -1: all claimed
    }
    if (share < 0) continue;
    job.call(job.obj, share, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace edgeq
