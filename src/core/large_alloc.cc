#include "core/large_alloc.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace edgeq {

std::shared_ptr<void> AllocateLarge(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t size = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size == 0 ? align : size);
  if (p == nullptr) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const char* off = std::getenv("EDGEQ_NO_HUGEPAGES");
  // Advice only: a kernel without THP ignores it, and nothing depends on it succeeding.
  if (align == kHuge && (off == nullptr || off[0] == 0 || off[0] == '0')) (void)madvise(p, size, MADV_HUGEPAGE);
#endif
  return std::shared_ptr<void>(p, std::free);
}

}  // namespace edgeq
