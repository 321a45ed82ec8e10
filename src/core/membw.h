// Memory read bandwidth: a streaming read with independent vector accumulators and
// no horizontal reduction inside the loop (a naive loop under-reports by ~25%).
#pragma once

#include <cstddef>

namespace edgeq {

struct MemBwResult {
  double gbps = 0;       // best of the repetitions
  size_t bytes = 0;      // buffer size
  int threads = 0;
};

// Reads a `bytes` buffer `reps` times with `threads` threads (split into contiguous
// parts) and reports the best rate.
MemBwResult MeasureReadBandwidth(size_t bytes, int threads, int reps);

}  // namespace edgeq
