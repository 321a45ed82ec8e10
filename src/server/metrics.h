// Server metrics in Prometheus text format: request and token counters, queue depth,
// slot and KV-cache use, and histograms of time to first token and inter-token latency.
// Thread-safe (one mutex; updates are a few per request).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace edgeq::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void Observe(double v);
  // Appends "<name>_bucket{le=...} ..., _sum, _count" lines.
  void Write(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Gauges {
  int32_t queue_depth = 0;
  int32_t slots_active = 0;
  int32_t slots_total = 0;
  int64_t kv_used_tokens = 0;
  int64_t kv_capacity_tokens = 0;
  uint64_t kv_bytes = 0;
  bool ready = false;
};

class Metrics {
 public:
  Metrics();
  void CountRequest(const std::string& endpoint, int status);
  void CountTokens(int32_t prompt, int32_t generated);
  void ObserveTtft(double seconds);
  void ObserveItl(const std::vector<double>& seconds);
  std::string Render(const Gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_;
};

}  // namespace edgeq::server
