// The trainer's event types (schemas/train_event.schema.json) and what the coordinator reads of
// them, named once: the trainer writes them, the worker relays and logs them, the queue reads
// them. tests/unit/schema_test.cc checks every name here against the schema.
#pragma once

#include <array>

namespace tallrec {

// Event types (the schema's `type`).
inline constexpr const char* kStartedEvent = "started";  // the attempt is training: running
inline constexpr const char* kProgressEvent = "progress";
inline constexpr const char* kEvalEvent = "eval";
inline constexpr const char* kCheckpointEvent = "checkpoint";  // the worker uploads its folder
// How the trainer says an attempt ended; the last of these decides (coordinator/attempt_end.h).
inline constexpr const char* kFinishedEvent = "finished";
inline constexpr const char* kFailedEvent = "failed";
inline constexpr const char* kPreemptedEvent = "preempted";

// The numbers of `progress` and `eval` events that the queue keeps as a run's metric series
// (each required by one of the two).
inline constexpr std::array<const char*, 7> kEventMetrics = {
    "loss", "lr", "grad_norm", "tokens_per_s", "memory_bytes", "val_auc", "val_loss"};

}  // namespace tallrec
