#include "coordinator/metrics.h"

#include <cstdio>

#include "coordinator/store.h"

namespace tallrec {

void CoordinatorMetrics::observe_dispatch(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++bucket_counts_[i];
  ++dispatch_count_;
  dispatch_sum_ += seconds;
}

void CoordinatorMetrics::count_http_request(const std::string& method, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++http_requests_[{method, status}];
}

std::string CoordinatorMetrics::prometheus_text(Store& store) {
  std::string out;
  char line[256];
  out += "# HELP tallrec_runs Runs in the store by state.\n# TYPE tallrec_runs gauge\n";
  for (const auto& [state, n] : store.views.runs_by_state()) {
    std::snprintf(line, sizeof line, "tallrec_runs{state=\"%s\"} %lld\n", run_state_name(state),
                  static_cast<long long>(n));
    out += line;
  }
  int64_t alive = 0, lost = 0;
  for (const auto& w : store.workers.list()) (w.alive ? alive : lost)++;
  out +=
      "# HELP tallrec_workers Workers known to the store, alive or lost.\n# TYPE tallrec_workers "
      "gauge\n";
  std::snprintf(line, sizeof line,
                "tallrec_workers{state=\"alive\"} %lld\ntallrec_workers{state=\"lost\"} %lld\n",
                static_cast<long long>(alive), static_cast<long long>(lost));
  out += line;
  std::lock_guard<std::mutex> lock(mutex_);
  out +=
      "# HELP tallrec_dispatch_seconds REQUEST received to LEASE sent.\n# TYPE "
      "tallrec_dispatch_seconds histogram\n";
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    std::snprintf(line, sizeof line, "tallrec_dispatch_seconds_bucket{le=\"%g\"} %llu\n",
                  kBuckets[i], static_cast<unsigned long long>(bucket_counts_[i]));
    out += line;
  }
  std::snprintf(
      line, sizeof line,
      "tallrec_dispatch_seconds_bucket{le=\"+Inf\"} %llu\ntallrec_dispatch_seconds_sum %.9f\n"
      "tallrec_dispatch_seconds_count %llu\n",
      static_cast<unsigned long long>(dispatch_count_), dispatch_sum_,
      static_cast<unsigned long long>(dispatch_count_));
  out += line;
  out +=
      "# HELP tallrec_checkpoint_bytes_total Checkpoint bytes received and stored.\n"
      "# TYPE tallrec_checkpoint_bytes_total counter\n";
  out += "tallrec_checkpoint_bytes_total " + std::to_string(checkpoint_bytes_.load()) + "\n";
  out +=
      "# HELP tallrec_http_requests_total HTTP requests served, by method and status.\n"
      "# TYPE tallrec_http_requests_total counter\n";
  for (const auto& [key, n] : http_requests_) {
    std::snprintf(line, sizeof line,
                  "tallrec_http_requests_total{method=\"%s\",code=\"%d\"} %llu\n",
                  key.first.c_str(), key.second, static_cast<unsigned long long>(n));
    out += line;
  }
  return out;
}

}  // namespace tallrec
