// The coordinator's own counters, shared by the broker (dispatch latency, checkpoint bytes) and
// the HTTP server (requests), and rendered with the store's counts as Prometheus text
// (GET /metrics). Thread-safe: the broker and the HTTP server run on different threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tallrec {

struct Store;

class CoordinatorMetrics {
 public:
  // REQUEST received -> LEASE sent (after its transaction committed), in seconds.
  void observe_dispatch(double seconds);
  void add_checkpoint_bytes(uint64_t bytes) { checkpoint_bytes_ += bytes; }
  void count_http_request(const std::string& method, int status);
  // Prometheus text exposition format 0.0.4, with runs by state and live workers from `store`.
  std::string prometheus_text(Store& store);

 private:
  static constexpr std::array<double, 10> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,  0.1,    0.25,  1.0};
  std::mutex mutex_;
  std::array<uint64_t, kBuckets.size()> bucket_counts_{};
  uint64_t dispatch_count_ = 0;
  double dispatch_sum_ = 0;
  std::atomic<uint64_t> checkpoint_bytes_{0};
  std::map<std::pair<std::string, int>, uint64_t> http_requests_;
};

}  // namespace tallrec
