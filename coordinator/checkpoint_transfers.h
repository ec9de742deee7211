// The coordinator's side of checkpoint transfer in TRP/1 (docs/dev/protocol.md §3.4, §3.5).
// Uploads (OFFER, then CHUNKs under CREDIT) are staged next to their final folder and recorded in
// the store only when every file's size and SHA-256 match the offer; downloads (FETCH, then
// CREDIT) stream a stored checkpoint back as CHUNKs, never more than the worker has granted,
// because a ROUTER socket drops what it cannot queue. Layout:
//   ARTIFACTS/runs/<run key>/step-NNNNNNNN/{adapter_model.safetensors, ..., manifest.json}
#pragma once

#include <algorithm>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "coordinator/metrics.h"
#include "coordinator/store.h"

namespace tallrec {

class CheckpointTransfers {
 public:
  using Send = std::function<void(const std::string& worker, const Message&)>;
  CheckpointTransfers(Store& store, std::filesystem::path artifacts, Send send);
  ~CheckpointTransfers();

  // Each handles one message from `worker`; a bad one is answered with ERROR.
  void offer(const std::string& worker, const nlohmann::json& body, double now);
  void chunk(const std::string& worker, const Message& m, double now);
  void fetch(const std::string& worker, const nlohmann::json& body, double now);
  void credit(const std::string& worker, const nlohmann::json& body, double now);
  // Sends what granted credit allows and drops transfers idle for `idle_seconds`.
  void pump(double now, double idle_seconds = 60);
  // Folders of checkpoints the store forgot are removed only once that is committed. A message
  // whose savepoint is rolled back takes its removals back: rollback_removals(the mark taken
  // before it), so a folder the store still records is never deleted.
  void after_commit();
  size_t removals_mark() const { return to_delete_.size(); }
  void rollback_removals(size_t mark) { to_delete_.resize(std::min(mark, to_delete_.size())); }
  // LEASE's `resume` for a run: its stored checkpoints with their files, or null when none.
  nlohmann::json resume_point(int64_t run_id);
  const std::filesystem::path& artifacts() const { return artifacts_; }
  void set_metrics(CoordinatorMetrics* metrics) { metrics_ = metrics; }

 private:
  struct Upload;
  struct Download;
  void error(const std::string& worker, const std::string& code, const std::string& what,
             const std::string& transfer);
  void finish_upload(const std::string& worker, const std::string& id, Upload& u, double now);

  Store& store_;
  std::filesystem::path artifacts_;
  Send send_;
  CoordinatorMetrics* metrics_ = nullptr;
  std::vector<std::filesystem::path> to_delete_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Upload>>
      uploads_;  // (worker, transfer)
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Download>>
      downloads_;  // (worker, transfer)
};

}  // namespace tallrec
