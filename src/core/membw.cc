#include "core/membw.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/cpu_features.h"
#include "core/large_alloc.h"
#include "core/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgeq {
namespace {

uint64_t ReadGeneric(const uint64_t* p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    a0 ^= p[i]; a1 ^= p[i + 1]; a2 ^= p[i + 2]; a3 ^= p[i + 3];
    a4 ^= p[i + 4]; a5 ^= p[i + 5]; a6 ^= p[i + 6]; a7 ^= p[i + 7];
  }
  return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint64_t ReadAvx512(const uint64_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 24));
  }
  __m512i a = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  alignas(64) uint64_t out[8];
  _mm512_store_si512(out, a);
  return out[0] ^ out[1] ^ out[2] ^ out[3] ^ out[4] ^ out[5] ^ out[6] ^ out[7];
}

__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint64_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), a);
  return out[0] ^ out[1] ^ out[2] ^ out[3];
}
#endif

}  // namespace

MemBwResult MeasureReadBandwidth(size_t bytes, int threads, int reps) {
  bytes = (bytes / 4096) * 4096;
  // Huge pages, as the repacked weights get: the probe's figure is the best the machine
  // gives, so decode's fraction of it is not flattered by TLB misses in the probe.
  std::shared_ptr<void> mem = AllocateLarge(bytes);
  auto* buf = static_cast<uint64_t*>(mem.get());
  MemBwResult r;
  if (buf == nullptr) return r;
  const size_t n = bytes / 8;
  ThreadPool pool(threads);
  // First touch from the threads that will read, so pages land near them.
  pool.ParallelFor(static_cast<int64_t>(n), 4096, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
  });
  auto read = ReadGeneric;
#if defined(__x86_64__)
  const CpuFeatures& f = GetCpuFeatures();
  if (f.avx512f) read = ReadAvx512;
  else if (f.avx2) read = ReadAvx2;
#endif
  volatile uint64_t sink = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    pool.ParallelFor(static_cast<int64_t>(n), 4096, [&](int, int64_t b, int64_t e) { sink = sink ^ read(buf + b, e - b); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.gbps = std::max(r.gbps, bytes / s / 1e9);
  }
  r.bytes = bytes;
  r.threads = threads;
  return r;
}

}  // namespace edgeq
