// One leased attempt on a worker, from LEASE to acknowledged DONE (docs/dev/protocol.md §3.3-3.7):
// prepare the data, fetch the run's stored checkpoints, run tallrec-train, relay its events
// (numbered, kept until ACKed), upload its checkpoints, and send DONE once they are stored.
// The agent (worker/agent.cc) drives several of these, one per slot, from one loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>

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

  ~Attempt();  // stops and joins a preparation still running
  // Starts preparing the data (tokenizing, on a thread of its own: it can take minutes, and the
  // agent must keep receiving meanwhile). Then each step() moves the attempt on: preparing,
  // fetching the checkpoints to resume from, training (relaying events, uploading checkpoints),
  // DONE.
  void start();
  // Pumps whichever of those the attempt is in. `stop_signal` is 0, or the signal the worker was
  // stopped by: passed on to the trainer; before the trainer runs (preparing, fetching) the
  // attempt ends preempted at once.
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
  // What the preparation thread hands over (shared: the thread outlives nothing it touches).
  struct Preparation {
    std::atomic<bool> done{false}, cancel{false};
    std::filesystem::path spec;
    std::exception_ptr failure;
  };
  // True once the data is prepared and the attempt has moved on; a failure or a stop is reported.
  bool step_preparation(int stop_signal);
  // A stop before the trainer ran: a preempted event and DONE (the run is queued again at once).
  void preempt_before_training(int stop_signal);
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
  std::shared_ptr<Preparation> preparation_;  // while preparing
  std::thread preparing_;
  std::filesystem::path spec_;                // written by prepare_run, once prepared
  std::optional<CheckpointFetcher> fetcher_;  // until the resume checkpoints are in place
  std::optional<TrainerProcess> trainer_;
  std::optional<CheckpointUploader> uploader_;
};

}  // namespace tallrec
