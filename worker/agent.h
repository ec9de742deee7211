// The worker agent (`tallrec worker`): speaks TRP/1 (docs/dev/protocol.md) to the coordinator over
// worker/coordinator_link.h. Per lease: prepare the data (worker/prepare_run.h), fetch the run's
// stored checkpoints when it resumes, start tallrec-train (worker/trainer_process.h), relay each
// JSON line of its stdout as an EVENT (kept and re-sent until ACKed), upload every checkpoint it
// writes (worker/checkpoint_sync.h), heartbeat, stop it on CANCEL, report DONE once the uploads
// are stored. Each of its slots runs one attempt (worker/attempt.h) on its share of the GPUs;
// the link reconnects on its own when the coordinator goes quiet.
#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "worker/gpus.h"

namespace tallrec {

struct AgentOptions {
  std::string coordinator;         // tcp://host:port
  std::string id;                  // routing id (default: host-pid)
  std::filesystem::path work_dir;  // token cache and run folders
  bool exit_when_idle = false;     // return when the coordinator has no work (tests, batch use)
  int threads = 0;  // CPU threads per trainer (0: tallrec-train's default, all cores)
  double give_up_after =
      0;  // seconds without a word from the coordinator before exiting 1 (0: never)
  int cancel_grace_seconds = 10;  // SIGTERM, then SIGKILL after this long
  // Stopped by SIGTERM or SIGUSR1 (Slurm's preemption, requeue, scancel or time-limit warning):
  // each trainer checkpoints at its next optimizer step and exits; its checkpoint is uploaded and
  // the attempt reported preempted. A trainer still running after this long is killed, and DONE
  // goes at most 5 s later whatever the uploads: keep it below Slurm's KillWait.
  int stop_grace_seconds = 20;
  // A memory cap for each trainer (0: none); a grid's memory_limit_gib lower than it wins.
  double memory_limit_gib = 0;
  std::optional<CurveClient> curve;  // CURVE keys, when the coordinator requires them
  int slots = 1;                     // attempts run at once
  std::vector<GpuInfo> gpus;         // shared evenly by the slots (none: CPU)
};

// Returns 0 when stopped or idle (with exit_when_idle), 1 when the coordinator stayed silent
// for give_up_after seconds.
// `stop_signal`, when given, says which signal set `stop` (SIGUSR1 is passed on to the trainers as
// such, so an attempt stopped by Slurm's time-limit warning says so; anything else as SIGTERM).
int run_agent(const AgentOptions& options, const std::atomic<bool>& stop,
              const std::atomic<int>* stop_signal = nullptr);

}  // namespace tallrec
