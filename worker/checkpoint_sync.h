// The worker's side of checkpoint transfer in TRP/1 (docs/protocol.md §3.4, §3.5).
// Upload: each checkpoint tallrec-train writes is hard-linked into a staging folder at once (the
// trainer prunes old checkpoints while the upload runs), offered, and sent in 1 MiB CHUNKs, never
// more than the coordinator's CREDIT allows. It is done when the coordinator says it is stored.
// Download: before a resumed attempt starts, the run's stored checkpoints are fetched into the
// trainer's checkpoints folder, each file checked against its SHA-256.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "common/transfer_files.h"
#include "worker/coordinator_link.h"

namespace tallrec {

class CheckpointUploader {
 public:
  CheckpointUploader(CoordinatorLink& link, int64_t attempt, std::filesystem::path staging_root);
  // Stages the checkpoint folder and queues it; false if the trainer already pruned it.
  bool add(const std::filesystem::path& checkpoint_dir);
  // Takes a CREDIT or ERROR about the current upload; false if `m` is about something else.
  bool handle(const Message& m);
  // Sends what credit allows; starts the next upload; re-offers one stalled for 10 s.
  void pump();
  // After a reconnect: the coordinator forgot the transfer; offer it again.
  void restart();
  bool idle() const { return queue_.empty(); }
  int stored() const { return stored_; }

 private:
  void offer();
  struct Staged {
    std::filesystem::path dir;
    std::vector<TransferFile> files;  // as offered
  };
  CoordinatorLink& link_;
  int64_t attempt_;
  std::filesystem::path staging_root_;
  std::deque<Staged> queue_;  // staged folders; the front is in flight
  std::string transfer_;      // id of the front's transfer ("" until offered)
  int64_t credit_ = 0;
  size_t file_ = 0;
  int64_t offset_ = 0;
  int failures_ = 0;
  int stored_ = 0;
  int transfer_count_ = 0;
  std::chrono::steady_clock::time_point last_progress_;
};

enum class FetchResult { kFetched, kFailed, kCanceled };

// Fetches LEASE's `resume` checkpoints into `checkpoints_dir` (as step-NNNNNNNN folders).
// `on_idle` runs about every 100 ms (heartbeats); it returns false to abandon the fetch.
// Messages that are not about this fetch go to `elsewhere` (the worker's other attempts).
FetchResult fetch_checkpoints(CoordinatorLink& link, int64_t attempt, const nlohmann::json& resume,
                              const std::filesystem::path& checkpoints_dir,
                              const std::function<bool()>& on_idle,
                              const std::function<void(const Message&)>& elsewhere);

}  // namespace tallrec
