// ThreadPool: every index is visited exactly once by ParallelFor/ParallelForDynamic, the
// results written by workers are visible to the caller after Run returns, and pools are
// created and destroyed repeatedly (the races TSan looks for: job hand-off, the spin/sleep
// switch, shutdown while workers spin). scripts/tsan.sh runs this under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace edgeq {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int nt : {1, 2, 3, 4}) {
    ThreadPool pool(nt);
    for (int64_t n : {0, 1, 7, 64, 1000}) {
      std::vector<int> hits(n, 0);  // plain ints: each index written by one thread only
      pool.ParallelFor(n, 8, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "nt=" << nt << " n=" << n << " i=" << i;
    }
  }
}

TEST(ThreadPool, ParallelForDynamicCoversEveryIndexOnceAcrossManyRuns) {
  ThreadPool pool(4);
  std::vector<int> hits(257, 0);
  for (int round = 0; round < 500; ++round) {
    pool.ParallelForDynamic(static_cast<int64_t>(hits.size()), 3, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
  }
  for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 500) << i;
}

TEST(ThreadPool, RunGivesEveryThreadItsIndexAndPublishesResults) {
  ThreadPool pool(4);
  std::vector<int64_t> per_thread(4, 0);
  for (int round = 1; round <= 1000; ++round) {
    pool.Run([&](int ti, int nt) {
      per_thread[ti] += round * (nt == 4 ? 1 : 0);  // read by the caller below without extra synchronization
    });
  }
  for (int64_t v : per_thread) EXPECT_EQ(v, 1000 * 1001 / 2);
}

TEST(ThreadPool, PoolsAreCreatedAndDestroyedWhileWorkersSpinOrSleep) {
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 50; ++round) {
    ThreadPool pool(3);
    if (round % 2 == 0) {  // half the pools run work first, half are destroyed straight away
      pool.ParallelForDynamic(30, 1, [&](int, int64_t b, int64_t e) { total += e - b; });
    }
  }
  EXPECT_EQ(total.load(), 25 * 30);
}

TEST(ThreadPool, TwoPoolsOnTwoThreadsAtOnce) {
  // The server runs the scheduler's pool on the executor thread while other threads
  // own their own pools (e.g. a session): pools must not share hidden state.
  auto work = [](int64_t* out) {
    ThreadPool pool(2);
    std::vector<int64_t> sums(2, 0);
    for (int r = 0; r < 200; ++r) {
      pool.ParallelFor(100, 10, [&](int ti, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sums[ti] += i;
      });
    }
    *out = sums[0] + sums[1];
  };
  int64_t a = 0, b = 0;
  std::thread t1(work, &a), t2(work, &b);
  t1.join();
  t2.join();
  EXPECT_EQ(a, 200 * 4950);
  EXPECT_EQ(b, 200 * 4950);
}

}  // namespace
}  // namespace edgeq
