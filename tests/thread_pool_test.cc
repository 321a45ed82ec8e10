// ThreadPool: every index is visited exactly once by ParallelFor/ParallelForDynamic, the
// results written by workers are visible to the caller after Run returns, and pools are
// created and destroyed repeatedly (the races TSan looks for: job hand-off, the spin/sleep
// switch, shutdown while workers spin). scripts/tsan.sh runs this under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/thread_pool.h"

#if defined(__linux__)
#include <sched.h>
#endif

namespace edgeq {
namespace {

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  for (int iter = 0; iter < 2000; ++iter) {
    const int64_t n = 1 + (iter * 37) % 1000;
    for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
    if (iter % 2 == 0) {
      pool.ParallelFor(n, 8, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      });
    } else {
      pool.ParallelForDynamic(n, 16, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "iteration " << iter << " index " << i;
  }
}

TEST(ThreadPool, SharesGetUniqueIndicesWhileRunning) {
  ThreadPool pool(4);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<std::atomic<int>> busy(4), ran(4);
    std::atomic<bool> overlap{false};
    pool.RunShares([&](int i, int n) {
      EXPECT_EQ(n, 4);
      if (busy[i].fetch_add(1) != 0) overlap = true;  // per-share scratch would be shared
      ran[i].fetch_add(1);
      busy[i].fetch_sub(1);
    });
    for (int i = 0; i < 4; ++i) ASSERT_EQ(ran[i].load(), 1) << "share " << i;
    ASSERT_FALSE(overlap.load());
  }
}

TEST(ThreadPool, RunGivesEachThreadItsOwnIndex) {
  ThreadPool pool(3);
  for (int iter = 0; iter < 200; ++iter) {
    std::vector<std::thread::id> who(3);
    pool.Run([&](int i, int) { who[i] = std::this_thread::get_id(); });
    EXPECT_EQ(who[0], std::this_thread::get_id());
    EXPECT_EQ(std::set<std::thread::id>(who.begin(), who.end()).size(), 3u);
  }
}

TEST(ThreadPool, OversubscribedCoreDoesNotStallJobs) {
#if !defined(__linux__)
  GTEST_SKIP() << "needs sched_setaffinity";
#else
  // Four threads on one CPU: the workers (which inherit the creator's affinity) only get
  // it when the scheduler gives it to them. Jobs must not wait for that: the caller runs
  // unclaimed shares itself. Waiting for a descheduled worker costs about a scheduler
  // time slice (milliseconds) per job, so 2000 jobs would take seconds.
  std::atomic<double> seconds{-1};
  std::atomic<int64_t> sum{0};
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    int first = 0;
    while (!CPU_ISSET(first, &allowed)) ++first;
    CPU_SET(first, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // this thread only
    ThreadPool pool(4);
    const auto t0 = std::chrono::steady_clock::now();
    for (int job = 0; job < 2000; ++job) {
      pool.ParallelFor(64, 1, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sum.fetch_add(i, std::memory_order_relaxed);
      });
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  t.join();
  EXPECT_EQ(sum.load(), 2000 * (63 * 64 / 2));
  std::printf("2000 jobs on 4 threads sharing one CPU: %.3f s\n", seconds.load());
  EXPECT_LT(seconds.load(), 1.5);
#endif
}

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

TEST(ThreadPool, ParallelForGuidedCoversEveryIndexOnceWithShrinkingChunks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 353, 5000}) {
      for (auto [min_chunk, max_chunk] : {std::pair<int64_t, int64_t>{1, 1}, {1, 4}, {1, 37}, {3, 37}, {10, 10}}) {
        std::vector<std::atomic<int>> hits(n + 1);
        std::atomic<int64_t> largest{0}, smallest{n + 1}, last_size{-1}, claims{0};
        pool.ParallelForGuided(n, min_chunk, max_chunk, [&](int, int64_t b, int64_t e) {
          ASSERT_LT(b, e);
          int64_t l = largest.load();
          while (e - b > l && !largest.compare_exchange_weak(l, e - b)) {}
          if (e == n) last_size = e - b;
          else {
            int64_t sm = smallest.load();
            while (e - b < sm && !smallest.compare_exchange_weak(sm, e - b)) {}
          }
          claims.fetch_add(1);
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " index " << i;
        EXPECT_EQ(hits[n].load(), 0);
        if (n <= min_chunk || threads == 1) {
          EXPECT_LE(claims.load(), 1) << "n=" << n << ": small work runs in one call";
        } else {
          EXPECT_LE(largest.load(), max_chunk) << "n=" << n;
          if (smallest.load() <= n) {
            EXPECT_GE(smallest.load(), min_chunk) << "n=" << n;
          }
          if (min_chunk == 1 && n > 1) {
            EXPECT_EQ(last_size.load(), 1) << "n=" << n << ": the tail shrinks to one";
          }
        }
      }
    }
  }
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

// Park() (the server's scheduler calls it after each step) sends spinning workers to
// sleep; the next job must still reach every thread, whether a worker is spinning,
// leaving its spin, or asleep, and a pool destroyed right after Park() must join.
TEST(ThreadPool, JobsAfterParkReachEveryThread) {
  ThreadPool pool(3);
  std::vector<int64_t> per_thread(3, 0);
  for (int round = 1; round <= 400; ++round) {
    pool.Run([&](int ti, int) { per_thread[ti] += round; });
    if (round % 3 != 0) pool.Park();
    if (round % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers asleep
  }
  for (int64_t v : per_thread) EXPECT_EQ(v, int64_t{400} * 401 / 2);
  for (int i = 0; i < 20; ++i) {
    ThreadPool p(2);
    p.Park();
  }
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
