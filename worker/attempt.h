// One leased attempt on a worker, from LEASE to acknowledged DONE (docs/dev/protocol.md §3.3-3.7):
// prepare the data, fetch the run's stored checkpoints, run tallrec-train, relay its events
// (numbered, kept until ACKed), upload its checkpoints, and send DONE once they are stored.
// The agent (worker/agent.cc) drives several of these, one per slot, from one loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "worker/agent.h"
#include "worker/checkpoint_sync.h"
#include "worker/coordinator_link.h"
#include "worker/gpus.h"
#include "worker/trainer_process.h"

namespace tallrec {

class Attempt {
 public:
  Attempt(CoordinatorLink& link, const Message& lease, const SlotResources& slot,
          const AgentOptions& options);
  int64_t id() const { return id_; }

  // Prepares the data (tokenizing can take a while, so it blocks: `keep_alive` runs about every
  // 100 ms meanwhile, for the heartbeats and the other slots) and starts fetching the
  // checkpoints to resume from; step() starts the trainer once they are in place.
  void start(const std::function<void()>& keep_alive);
  // Pumps the fetch, then relays the trainer's output, pumps uploads, sends DONE when due, stops
  // a lost attempt. `stop_signal` is 0, or the signal the worker was stopped by, passed on to the
  // trainer (a worker stopped while fetching gives the attempt up, as one stopped while
  // preparing does).
  void step(int stop_signal);
  // Takes a message about this attempt (ACK, CANCEL, ERROR, fetch CHUNK, upload CREDIT); false
  // if not its.
  bool handle(const Message& m);
  // Re-sends what is not acknowledged (after a heartbeat or a reconnect).
  void resend();
  // After a reconnect: transfers in flight are asked for or offered again.
  void restart_transfers();
  // DONE acknowledged, or the attempt was lost and its trainer has exited.
  bool over();

 private:
  void emit(MessageType type, nlohmann::json body);
  // Starts the trainer and the uploader; a spec the trainer cannot take fails the attempt.
  void launch(const std::filesystem::path& spec);
  // Reports a failure before the trainer ran: failed event and DONE (exit 2 for bad input).
  void fail_before_training(const std::exception& e);
  // One stderr line per event a person watching the worker wants (progress, eval, outcome):
  // UTC time, run key, the run's attempt number, and what happened.
  void log_event(const nlohmann::json& event) const;

  CoordinatorLink& link_;
  const AgentOptions& options_;
  SlotResources slot_;
  Message lease_;
  int64_t id_;
  std::filesystem::path run_dir_;
  std::map<int64_t, std::pair<MessageType, nlohmann::json>> unacked_;  // seq -> message
  int64_t seq_ = 0;
  bool lost_ = false;  // cancelled, or no longer ours: stop, report nothing more
  bool done_sent_ = false;
  // Set when the worker is told to stop: the trainer is killed at it, DONE goes 5 s after it.
  std::optional<std::chrono::steady_clock::time_point> stop_deadline_;
  std::filesystem::path spec_;                // written by prepare_run, once prepared
  std::optional<CheckpointFetcher> fetcher_;  // until the resume checkpoints are in place
  std::optional<TrainerProcess> trainer_;
  std::optional<CheckpointUploader> uploader_;
};

}  // namespace tallrec
