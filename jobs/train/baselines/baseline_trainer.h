// One attempt of a Table 1 baseline: BaselineSpec + its inputs file in, events (the same types
// and fields as an LLM attempt's: schemas/train_event.schema.json) and the best model out.
//   epochs of the few-shot records in a seeded order, batch_size records per step, Adam with L2
//   on the method's loss (jobs/train/baselines/baseline_loss.h);
//   validation AUC after every epoch; early stopping after `early_stopping_patience` epochs
//   without a better one; the best epoch's model scores every test set.
// There are no checkpoints: an attempt takes seconds, and a preempted one starts again.
#pragma once

#include <filesystem>

#include "common/baseline_spec.h"
#include "jobs/data/baseline_inputs.h"
#include "jobs/train/baselines/sequential_model.h"

namespace tallrec {

// Trains and writes OUT/events.jsonl and OUT/model.safetensors (RecBole's parameter names).
// Returns the exit code: 0 done, 1 failed, kBadInputExitCode for bad input, kPreemptedExitCode
// when stopped by SIGTERM/SIGUSR1.
int run_baseline(const BaselineSpec& spec, const std::filesystem::path& out_dir);

// A split's records as tensors (int64, CPU).
SequenceBatch sequence_batch(const EncodedSplit& split, int64_t max_history);

}  // namespace tallrec
