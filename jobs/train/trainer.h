// One training attempt: RunSpec + tokens in, events + files out (docs/dev/design.md, Training job).
//   OUT/events.jsonl            every event (also on stdout)
//   OUT/checkpoints/step-N/     the newest and the best checkpoint (see checkpoint.h)
//   OUT/adapter/                the result: the best adapter, PEFT layout
// Restarting with the same OUT continues from the newest valid checkpoint; on CPU the final
// adapter is then bit-identical to an uninterrupted run's.
#pragma once

#include <filesystem>

#include "common/run_spec.h"

namespace tallrec {

// Returns the process exit code: 0 finished, 1 failed (retryable), 2 bad input (not retryable),
// kPreemptedExitCode (75) stopped by SIGTERM or SIGUSR1 after a checkpoint at an optimizer-step
// boundary (preemption.h; a `preempted` event says at which step). A "failed" event is emitted
// before a return of 1 or 2.
// With spec.world_size > 1 this is one rank: `rank` and `rendezvous_file` (a FileStore path all
// ranks share) say which; rank 0 evaluates, checkpoints and writes the result.
int run_training(const RunSpec& spec, const std::filesystem::path& out_dir, int rank = 0,
                 const std::string& rendezvous_file = "");

// Starts spec.world_size processes of `self` (this binary) for one training run and waits for
// them; returns the first non-zero exit code (the others are then killed), else 0.
int launch_ranks(const std::string& self, const std::string& spec_path, const RunSpec& spec,
                 const std::filesystem::path& out_dir);

}  // namespace tallrec
