// --cpu-affinity: pools created after ThreadPool::SetPinThreads(true) run each thread on
// one CPU of the allowed set, distinct CPUs for distinct threads (up to the set's size).
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <vector>

#include "core/thread_pool.h"

#if defined(__linux__)
#include <sched.h>
#endif

namespace edgeq {
namespace {

TEST(ThreadAffinity, PinnedPoolsRunEachThreadOnItsOwnCpu) {
#if !defined(__linux__)
  GTEST_SKIP() << "thread pinning is implemented for Linux only";
#else
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  const int n_cpus = CPU_COUNT(&allowed);
  ThreadPool::SetPinThreads(true);
  {
    const int n = 2;
    std::vector<int> cpu_count(n, -1), cpu(n, -1);
    std::atomic<int64_t> sum{0};
    {
      ThreadPool pool(n);
      pool.Run([&](int i, int) {
        cpu_set_t mine;
        CPU_ZERO(&mine);
        if (sched_getaffinity(0, sizeof mine, &mine) == 0) {
          cpu_count[i] = CPU_COUNT(&mine);
          for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mine)) cpu[i] = c;
          }
        }
      });
      pool.ParallelForDynamic(1000, 7, [&](int, int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) sum += k;
      });
    }
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
    for (int i = 0; i < n; ++i) EXPECT_EQ(cpu_count[i], 1) << "thread " << i << " is not pinned";
    if (n_cpus >= n) {
      EXPECT_NE(cpu[0], cpu[1]) << "two threads pinned to the same CPU";
    }
  }
  ThreadPool::SetPinThreads(false);
  // The calling thread was pinned by the pool; give it its whole set back for other tests.
  ASSERT_EQ(sched_setaffinity(0, sizeof allowed, &allowed), 0);
#endif
}

}  // namespace
}  // namespace edgeq
