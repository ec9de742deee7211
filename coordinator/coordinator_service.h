// `tallrec coordinator` as one object: the store, the TRP/1 broker (ZeroMQ, this thread) and the
// HTTP API with the dashboard (its own thread, its own store connection), wired together. The
// demo runs the same object in-process.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "coordinator/broker.h"
#include "coordinator/slurm_pool.h"

namespace tallrec {

// A file the coordinator serves: under an installed prefix's share/tallrec/ (`cmake --install`;
// found from this executable, bin/../share/tallrec/RELATIVE) when that exists, else the source
// tree's copy a build folder uses.
std::filesystem::path served_file(const std::filesystem::path& relative,
                                  const std::filesystem::path& in_source_tree);

struct CoordinatorOptions {
  std::filesystem::path db = "tallrec.db";
  std::filesystem::path artifacts;              // default: artifacts/ next to the store
  std::string listen = "tcp://127.0.0.1:5555";  // ZeroMQ (port * or 0: any free one)
  RetryPolicy policy;
  std::optional<CurveServer> curve;
  std::filesystem::path trace;          // TRP/1 trace file, or none
  std::string http = "127.0.0.1:8080";  // ADDRESS:PORT of the API and dashboard, or "off"
  std::filesystem::path token_file;     // default: api-token next to the store
  bool reads_need_token = false;
  std::filesystem::path web_root = served_file("web-ui-static", TALLREC_WEB_ROOT);
  std::filesystem::path chart_js =
      "/usr/share/javascript/chart.js/chart.min.js";  // Debian's libjs-chart.js
  std::filesystem::path openapi = served_file("schemas/openapi.json", TALLREC_OPENAPI);
  std::optional<SlurmPoolOptions> slurm_pool;  // the elastic pool of Slurm workers, when asked
};

class CoordinatorService {
 public:
  // Opens the store and binds both sockets; throws Error naming what could not be opened.
  explicit CoordinatorService(CoordinatorOptions options);
  ~CoordinatorService();
  std::string zmq_endpoint() const;
  std::string http_url() const;  // "" when HTTP is off
  const std::string& api_token() const;
  bool api_token_created() const;  // made at this start: print it, once
  const CoordinatorOptions& options() const;
  // Serves TRP/1 on this thread until `stop`; HTTP runs meanwhile on its own thread.
  void serve(const std::atomic<bool>& stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tallrec
