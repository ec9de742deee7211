// One training attempt: RunSpec + tokens in, events + files out (DESIGN.md, "Training job").
//   OUT/events.jsonl            every event (also on stdout)
//   OUT/checkpoints/step-N/     the newest and the best checkpoint (see checkpoint.h)
//   OUT/adapter/                the result: the best adapter, PEFT layout
// Restarting with the same OUT continues from the newest valid checkpoint; on CPU the final
// adapter is then bit-identical to an uninterrupted run's.
#pragma once

#include <filesystem>

#include "jobs/train/run_spec.h"

namespace tallrec {

// Returns the process exit code: 0 finished, 1 failed (retryable), 2 bad input (not retryable).
// A "failed" event is emitted before a non-zero return.
int run_training(const RunSpec& spec, const std::filesystem::path& out_dir);

}  // namespace tallrec
