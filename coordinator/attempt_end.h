// How an attempt ended and what becomes of its run: the queue's rules (docs/dev/design.md,
// Coordinator) as pure functions of what the trainer said, how it exited and where the run
// stands. No store here: coordinator/queue.cc reads the run, asks these, and writes the answer in
// one transaction, so each rule is tested on its own (tests/unit/attempt_end_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/retry_policy.h"
#include "coordinator/run_state.h"

namespace tallrec {

// Where a run stands as one of its attempts ends.
struct RunSoFar {
  int64_t attempts = 1;  // leased so far, the ending one included
  int64_t max_attempts = 3;
  int64_t preemptions = 0;  // before this attempt
  // The batch sizes its spec names (nullopt: RunSpec's default), and the micro and evaluation
  // batches an earlier out-of-memory left it with (nullopt: none did).
  std::optional<int64_t> batch_size, micro_batch_size, eval_batch_size;
  std::optional<int64_t> halved_micro_batch_size, halved_eval_batch_size;
};

// What becomes of the attempt and its run.
struct AttemptEnd {
  AttemptState attempt = AttemptState::kFailed;  // how the attempt ended
  RunState run = RunState::kFailed;              // succeeded, queued or failed
  std::string reason;                            // why, stored with the attempt ("" for a success)
  nlohmann::json result;                         // a success: the trainer's `finished` event
  // Queued: seconds before the run may be leased again, or at once with the attempt given back
  // (not counted against max_attempts).
  double backoff_seconds = 0;
  bool attempt_given_back = false;
  bool preempted = false;  // one more preemption of the run
  // Set when an out-of-memory halved them: what the next attempts run with.
  std::optional<int64_t> micro_batch_size, eval_batch_size;
};

// A success: the run succeeded with the trainer's `finished` event as its result.
AttemptEnd attempt_succeeded(const nlohmann::json& finished);

// A failed or lost attempt: the run is queued again after a backoff (base * 2^(attempts-1), at
// most backoff_max), unless `retryable` is false or the run has used max_attempts: then it fails.
AttemptEnd attempt_failed(AttemptState how, const std::string& reason, bool retryable,
                          const RunSoFar& run, const RetryPolicy& policy);

// An attempt that was not the run's failure (preempted, retried smaller, its LEASE lost on the
// way): the run is queued again at once and the attempt is given back.
AttemptEnd attempt_given_back(AttemptState how, const std::string& reason);

// The worker's DONE for an attempt, from the attempt's last outcome event (`finished`, `failed`
// or `preempted` of schemas/train_event.schema.json; null when it sent none) and the trainer's
// exit code:
// - succeeded when the trainer exited 0 after its `finished` event;
// - out of memory (a `failed` event with `out_of_memory`): in a train step or an evaluation, the
//   attempt is given back with half the micro-batch (the largest divisor of batch_size at most
//   half of it, so the global batch and the optimizer steps stay the same: twice the
//   accumulation) and half the evaluation batch; at micro-batch 1, or out of memory while
//   loading, the run fails;
// - preempted (its trainer checkpointed and stopped on a signal, exit 75): given back, unless the
//   run was preempted more than policy.max_preemptions times: then it fails, saying so;
// - otherwise failed, as attempt_failed: retryable unless the trainer said not, or exited 2 for
//   bad input (common/exit_codes.h); with no outcome event the reason is the exit code and the
//   tail of its stderr.
AttemptEnd decide_attempt_end(const nlohmann::json& outcome, int exit_code,
                              const std::string& stderr_tail, const RunSoFar& run,
                              const RetryPolicy& policy);

}  // namespace tallrec
