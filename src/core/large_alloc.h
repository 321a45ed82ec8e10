// Memory for large, long-lived buffers that kernels stream through (weights repacked at
// load). Such a buffer is read end to end for every decoded token: with 4 KiB pages that
// is a TLB miss every 4 KiB, with 2 MiB pages one per 2 MiB. So buffers of 2 MiB or more
// are 2 MiB aligned and, on Linux, advised as transparent huge pages (MADV_HUGEPAGE,
// which the default THP mode "madvise" honours). EDGEQ_NO_HUGEPAGES=1 turns the advice
// off (for measuring what it buys).
#pragma once

#include <cstddef>
#include <memory>

namespace edgeq {

// Zero-initialised is not promised. Returns nullptr when the memory cannot be had.
std::shared_ptr<void> AllocateLarge(size_t bytes);

}  // namespace edgeq
