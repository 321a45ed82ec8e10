#include "server/metrics.h"

#include <cstdio>

namespace edgeq::server {

namespace {
std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Write(const std::string& name, std::string* out) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name + "_bucket{le=\"" + Num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  *out += name + "_sum " + Num(sum_) + "\n";
  *out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::CountRequest(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::CountTokens(int32_t prompt, int32_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}

void Metrics::ObserveTtft(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(seconds);
}

void Metrics::ObserveItl(const std::vector<double>& seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  for (double s : seconds) itl_.Observe(s);
}

std::string Metrics::Render(const Gauges& g) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string o;
  o += "# HELP edgeq_requests_total HTTP requests by endpoint and status code.\n";
  o += "# TYPE edgeq_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    o += "edgeq_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
         std::to_string(n) + "\n";
  }
  o += "# HELP edgeq_prompt_tokens_total Prompt tokens processed.\n# TYPE edgeq_prompt_tokens_total counter\n";
  o += "edgeq_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  o += "# HELP edgeq_generated_tokens_total Tokens generated.\n# TYPE edgeq_generated_tokens_total counter\n";
  o += "edgeq_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  o += "# HELP edgeq_queue_depth Requests waiting for a slot.\n# TYPE edgeq_queue_depth gauge\n";
  o += "edgeq_queue_depth " + std::to_string(g.queue_depth) + "\n";
  o += "# HELP edgeq_slots_active Slots generating.\n# TYPE edgeq_slots_active gauge\n";
  o += "edgeq_slots_active " + std::to_string(g.slots_active) + "\n";
  o += "# HELP edgeq_slots_total Parallel slots.\n# TYPE edgeq_slots_total gauge\n";
  o += "edgeq_slots_total " + std::to_string(g.slots_total) + "\n";
  o += "# HELP edgeq_kv_cache_used_tokens Tokens held in the KV cache of all slots.\n";
  o += "# TYPE edgeq_kv_cache_used_tokens gauge\n";
  o += "edgeq_kv_cache_used_tokens " + std::to_string(g.kv_used_tokens) + "\n";
  o += "# HELP edgeq_kv_cache_capacity_tokens KV cache capacity of all slots.\n";
  o += "# TYPE edgeq_kv_cache_capacity_tokens gauge\n";
  o += "edgeq_kv_cache_capacity_tokens " + std::to_string(g.kv_capacity_tokens) + "\n";
  o += "# HELP edgeq_kv_cache_usage_ratio Used fraction of the KV cache.\n# TYPE edgeq_kv_cache_usage_ratio gauge\n";
  o += "edgeq_kv_cache_usage_ratio " +
       Num(g.kv_capacity_tokens > 0 ? double(g.kv_used_tokens) / double(g.kv_capacity_tokens) : 0.0) + "\n";
  o += "# HELP edgeq_kv_cache_bytes Bytes allocated for the KV cache.\n# TYPE edgeq_kv_cache_bytes gauge\n";
  o += "edgeq_kv_cache_bytes " + std::to_string(g.kv_bytes) + "\n";
  o += "# HELP edgeq_ready 1 when the model is loaded.\n# TYPE edgeq_ready gauge\n";
  o += std::string("edgeq_ready ") + (g.ready ? "1" : "0") + "\n";
  o += "# HELP edgeq_time_to_first_token_seconds From request arrival to the first generated token.\n";
  o += "# TYPE edgeq_time_to_first_token_seconds histogram\n";
  ttft_.Write("edgeq_time_to_first_token_seconds", &o);
  o += "# HELP edgeq_inter_token_latency_seconds Time between consecutive generated tokens.\n";
  o += "# TYPE edgeq_inter_token_latency_seconds histogram\n";
  itl_.Write("edgeq_inter_token_latency_seconds", &o);
  return o;
}

}  // namespace edgeq::server
