// The worker's side of checkpoint transfer in TRP/1 (docs/dev/protocol.md §3.4, §3.5).
// Upload: each checkpoint tallrec-train writes is hard-linked into a staging folder at once (the
// trainer prunes old checkpoints while the upload runs), offered, and sent in 1 MiB CHUNKs, never
// more than the coordinator's CREDIT allows. It is done when the coordinator says it is stored.
// Download: before a resumed attempt starts, the run's stored checkpoints are fetched into the
// trainer's checkpoints folder, each file checked against its SHA-256.
// Both are pumped objects: the agent's one poll loop hands them their messages (handle) and lets
// them send (pump); neither blocks or receives on its own.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
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

enum class FetchResult { kFetched, kFailed };

class CheckpointFetcher {
 public:
  // LEASE's `resume` ({checkpoints: [{checkpoint, files: [{name, bytes, sha256}]}]}, or null:
  // nothing to fetch), fetched into `checkpoints_dir` as step-NNNNNNNN folders. Throws
  // InputError when `resume` is malformed.
  CheckpointFetcher(CoordinatorLink& link, int64_t attempt, const nlohmann::json& resume,
                    std::filesystem::path checkpoints_dir);
  // Takes a CHUNK or ERROR of the current fetch; false if `m` is about something else.
  bool handle(const Message& m);
  // Sends the FETCH due (the next checkpoint, or a retry); retries a transfer stalled for 10 s.
  void pump();
  // After a reconnect: the coordinator forgot the transfer; ask again (not counted as a failure).
  void restart();
  // Set once every checkpoint is in place (kFetched) or one failed three times (kFailed; its
  // staging folder is removed, nothing half-fetched is left).
  std::optional<FetchResult> result() const { return result_; }

 private:
  struct Wanted {
    std::string name;
    std::vector<TransferFile> files;
  };
  void send_fetch();
  void retry();   // this try failed: the next one, or kFailed after kMaxTries
  void finish();  // every file's last chunk arrived: check, move into place, go on

  CoordinatorLink& link_;
  int64_t attempt_;
  std::filesystem::path checkpoints_dir_;
  std::vector<Wanted> wanted_;
  size_t index_ = 0;  // the checkpoint being fetched
  int tries_ = 0;     // failed tries of it
  int transfer_count_ = 0;
  std::string transfer_;  // "" until its FETCH is sent
  std::map<std::string, int64_t> written_;
  size_t complete_ = 0;  // files whose last chunk arrived
  std::chrono::steady_clock::time_point last_progress_;
  std::optional<FetchResult> result_;
};

}  // namespace tallrec
