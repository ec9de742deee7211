#include "coordinator/attempt_end.h"

#include <algorithm>

#include "common/exit_codes.h"
#include "common/run_spec.h"
#include "common/train_events.h"

namespace tallrec {
namespace {

AttemptEnd ending(AttemptState attempt, RunState run, const std::string& reason) {
  AttemptEnd end;
  end.attempt = attempt;
  end.run = run;
  end.reason = reason;
  return end;
}

double backoff(int64_t attempts, const RetryPolicy& p) {
  double b = p.backoff_base;
  for (int64_t k = 1; k < attempts && b < p.backoff_max; ++k) b *= 2;
  return std::min(b, p.backoff_max);
}

// The micro-batch after an out-of-memory at `micro`: the largest that divides `batch` and is at
// most half of it (so the global batch stays `batch`), 0 when `micro` is 1 already.
int64_t halved_micro_batch(int64_t micro, int64_t batch) {
  for (int64_t m = micro / 2; m >= 1; --m)
    if (batch % m == 0) return m;
  return 0;
}

AttemptEnd out_of_memory(const nlohmann::json& failed, const RunSoFar& run) {
  const RunSpec defaults;
  const int64_t batch = run.batch_size.value_or(defaults.batch_size);
  const int64_t micro = run.halved_micro_batch_size.value_or(
      run.micro_batch_size.value_or(defaults.micro_batch_size));
  const int64_t eval =
      run.halved_eval_batch_size.value_or(run.eval_batch_size.value_or(defaults.eval_batch_size));
  const std::string phase = failed["out_of_memory"].value("phase", std::string("train"));
  const int64_t next_micro = halved_micro_batch(micro, batch);
  const std::string reason = failed.value("reason", std::string("out of memory"));
  // Loading does not depend on the batch; at micro-batch 1 nothing is left to halve.
  if (phase == "load" || next_micro == 0)
    return attempt_failed(AttemptState::kFailed,
                          reason + (next_micro == 0 ? "; micro-batch 1 does not fit either"
                                                    : "; a smaller batch would not help"),
                          /*retryable=*/false, run, RetryPolicy{});
  const int64_t next_eval = std::max<int64_t>(1, eval / 2);
  // The halvings are bounded by log2(micro-batch): no attempt is spent on them.
  AttemptEnd end = attempt_given_back(
      AttemptState::kFailed, reason + "; retrying with micro-batch " + std::to_string(next_micro) +
                                 " x " + std::to_string(batch / next_micro) +
                                 " accumulation (global batch " + std::to_string(batch) +
                                 "), evaluation batch " + std::to_string(next_eval));
  end.micro_batch_size = next_micro;
  end.eval_batch_size = next_eval;
  return end;
}

AttemptEnd preemption(const nlohmann::json& preempted, const RunSoFar& run,
                      const RetryPolicy& policy) {
  const std::string reason = "preempted at step " +
                             std::to_string(preempted.value("step", int64_t(0))) + " (" +
                             preempted.value("reason", std::string("signal")) + ")";
  const int64_t preemptions = run.preemptions + 1;
  // A run that is stopped every time it runs would cycle forever: it fails, saying why.
  AttemptEnd end = preemptions > policy.max_preemptions
                       ? attempt_failed(AttemptState::kPreempted,
                                        reason + "; preempted " + std::to_string(preemptions) +
                                            " times, more than --max-preemptions " +
                                            std::to_string(policy.max_preemptions) +
                                            ": the run never got to finish",
                                        /*retryable=*/false, run, policy)
                       : attempt_given_back(AttemptState::kPreempted, reason);
  end.preempted = true;
  return end;
}

}  // namespace

AttemptEnd attempt_succeeded(const nlohmann::json& finished) {
  AttemptEnd end = ending(AttemptState::kSucceeded, RunState::kSucceeded, "");
  end.result = finished;
  return end;
}

AttemptEnd attempt_failed(AttemptState how, const std::string& reason, bool retryable,
                          const RunSoFar& run, const RetryPolicy& policy) {
  const bool again = retryable && run.attempts < run.max_attempts;
  AttemptEnd end = ending(how, again ? RunState::kQueued : RunState::kFailed, reason);
  if (again) end.backoff_seconds = backoff(run.attempts, policy);
  return end;
}

AttemptEnd attempt_given_back(AttemptState how, const std::string& reason) {
  AttemptEnd end = ending(how, RunState::kQueued, reason);
  end.attempt_given_back = true;
  return end;
}

AttemptEnd decide_attempt_end(const nlohmann::json& outcome, int exit_code,
                              const std::string& stderr_tail, const RunSoFar& run,
                              const RetryPolicy& policy) {
  const std::string type = outcome.is_object() ? outcome.value("type", "") : "";
  if (exit_code == 0 && type == kFinishedEvent) return attempt_succeeded(outcome);
  if (type == kFailedEvent && outcome.contains("out_of_memory") &&
      outcome["out_of_memory"].is_object())
    return out_of_memory(outcome, run);
  if (type == kPreemptedEvent) return preemption(outcome, run, policy);
  // No outcome event at all (the trainer died before its first line): retryable.
  const bool retryable =
      exit_code != kBadInputExitCode && (outcome.is_null() || outcome.value("retryable", true));
  const std::string reason = outcome.is_null()
                                 ? "exit " + std::to_string(exit_code) + ": " + stderr_tail
                                 : outcome.value("reason", std::string("failed"));
  return attempt_failed(AttemptState::kFailed, reason, retryable, run, policy);
}

}  // namespace tallrec
