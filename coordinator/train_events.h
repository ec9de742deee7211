// What the coordinator reads of the trainer's events (schemas/train_event.schema.json), named
// once; tests/unit/schema_test.cc checks every name here against the schema.
#pragma once

#include <array>

namespace tallrec {

// Event types (the schema's `type`).
inline constexpr const char* kStartedEvent = "started";  // the attempt is training: running
inline constexpr const char* kProgressEvent = "progress";
inline constexpr const char* kEvalEvent = "eval";
// How the trainer says an attempt ended; the last of these decides (coordinator/attempt_end.h).
inline constexpr const char* kFinishedEvent = "finished";
inline constexpr const char* kFailedEvent = "failed";
inline constexpr const char* kPreemptedEvent = "preempted";

// The numbers of `progress` and `eval` events that the queue keeps as a run's metric series
// (each required by one of the two).
inline constexpr std::array<const char*, 7> kEventMetrics = {
    "loss", "lr", "grad_norm", "tokens_per_s", "memory_bytes", "val_auc", "val_loss"};

}  // namespace tallrec
