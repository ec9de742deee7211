// The coordinator's broker: one ZeroMQ ROUTER socket speaking TRP/1 (docs/dev/protocol.md) on top
// of the store. Every message is handled in one store transaction; a malformed or stale message
// is answered with ERROR and the broker keeps serving. Checkpoints are stored under `artifacts`
// (coordinator/checkpoint_transfers.h).
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "coordinator/metrics.h"
#include "coordinator/store.h"

namespace tallrec {

// CURVE on the broker's socket: its key pair and the public keys of the workers it lets in.
struct CurveServer {
  std::string public_key, secret_key;
  std::set<std::string> worker_keys;
};

class Broker {
 public:
  // Binds `endpoint` (e.g. "tcp://127.0.0.1:5555"; port "*" picks a free one).
  // With `curve`, only workers whose public key is listed complete the handshake (ZAP).
  Broker(Store& store, const std::string& endpoint, const std::filesystem::path& artifacts,
         RetryPolicy policy = {}, std::optional<CurveServer> curve = std::nullopt);
  // Appends every message in and out to `file` as JSON lines {"dir", "worker", "type", "body"}
  // (CHUNK data as its size): a protocol trace for debugging, and what tests check against
  // schemas/trp1.schema.json.
  void trace_to(const std::filesystem::path& file);
  // The clock leases, heartbeats and transfers are timed by (seconds since the epoch;
  // common/clock.h's unix_time unless set). Set before serve(): tests move time on without
  // sleeping.
  void set_clock(std::function<double()> now);
  // Dispatch latency and checkpoint bytes go to `metrics` (owned by the caller; may be null).
  void set_metrics(CoordinatorMetrics* metrics);
  ~Broker();
  // The address actually bound.
  std::string endpoint() const;
  // Serves until `stop` becomes true; expires lost leases about once a second.
  void serve(const std::atomic<bool>& stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tallrec
