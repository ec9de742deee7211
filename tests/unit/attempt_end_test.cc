// How an attempt ended and what becomes of its run (coordinator/attempt_end.h), rule by rule with
// no store; tests/unit/queue_test.cc runs the same rules through the queue's transactions.
#include "coordinator/attempt_end.h"

#include <gtest/gtest.h>

#include "common/exit_codes.h"

namespace tallrec {
namespace {

const RetryPolicy kPolicy{30, 5, 300};

RunSoFar run(int64_t attempts = 1, int64_t max_attempts = 3) {
  RunSoFar r;
  r.attempts = attempts;
  r.max_attempts = max_attempts;
  return r;
}

nlohmann::json out_of_memory(const std::string& phase) {
  return {{"type", "failed"},
          {"reason", "out of memory in " + phase},
          {"retryable", true},
          {"out_of_memory",
           {{"phase", phase}, {"step", 1}, {"micro_batch_size", 8}, {"eval_batch_size", 32}}}};
}

TEST(AttemptEnd, FinishedAndExitZeroSucceeds) {
  const nlohmann::json finished = {{"type", "finished"}, {"test_auc", {{"movie", 0.7}}}};
  const AttemptEnd end = decide_attempt_end(finished, 0, "", run(), kPolicy);
  EXPECT_EQ(end.attempt, AttemptState::kSucceeded);
  EXPECT_EQ(end.run, RunState::kSucceeded);
  EXPECT_EQ(end.result, finished);
  EXPECT_EQ(end.reason, "");
  // A `finished` event and then a crash on the way out is no success.
  EXPECT_EQ(decide_attempt_end(finished, 139, "", run(), kPolicy).run, RunState::kQueued);
}

TEST(AttemptEnd, AFailureIsRetriedWithABackoffThatDoublesUpToItsCap) {
  // No outcome event at all (the trainer died before its first line): retryable, and the reason
  // is what the process left.
  const AttemptEnd first = decide_attempt_end(nullptr, 0, "Killed", run(1), kPolicy);
  EXPECT_EQ(first.attempt, AttemptState::kFailed);
  EXPECT_EQ(first.run, RunState::kQueued);
  EXPECT_EQ(first.reason, "exit 0: Killed");
  EXPECT_EQ(first.backoff_seconds, 5);
  EXPECT_FALSE(first.attempt_given_back);
  EXPECT_EQ(decide_attempt_end(nullptr, 1, "", run(2), kPolicy).backoff_seconds, 10);
  EXPECT_EQ(decide_attempt_end(nullptr, 1, "", run(3, 100), kPolicy).backoff_seconds, 20);
  EXPECT_EQ(decide_attempt_end(nullptr, 1, "", run(50, 100), kPolicy).backoff_seconds, 300);
  // The last attempt: the run fails.
  EXPECT_EQ(decide_attempt_end(nullptr, 1, "", run(3, 3), kPolicy).run, RunState::kFailed);
  // A lost lease follows the same rule.
  const AttemptEnd lost =
      attempt_failed(AttemptState::kLost, "lease expired", true, run(2), kPolicy);
  EXPECT_EQ(lost.attempt, AttemptState::kLost);
  EXPECT_EQ(lost.run, RunState::kQueued);
  EXPECT_EQ(lost.backoff_seconds, 10);
}

TEST(AttemptEnd, BadInputFailsAtOnce) {
  const nlohmann::json failed = {{"type", "failed"}, {"reason", "no such file"}};
  EXPECT_EQ(decide_attempt_end(failed, kBadInputExitCode, "", run(), kPolicy).run,
            RunState::kFailed)
      << "exit 2: bad input, not worth retrying";
  const AttemptEnd said = decide_attempt_end(
      {{"type", "failed"}, {"reason", "bad data"}, {"retryable", false}}, 1, "", run(), kPolicy);
  EXPECT_EQ(said.run, RunState::kFailed) << "the trainer said not retryable";
  EXPECT_EQ(said.reason, "bad data");
  EXPECT_EQ(decide_attempt_end(failed, 1, "", run(), kPolicy).run, RunState::kQueued);
}

TEST(AttemptEnd, APreemptionGivesTheAttemptBackUntilItHappensTooOften) {
  const nlohmann::json preempted = {
      {"type", "preempted"}, {"step", 40}, {"checkpoint_step", 40}, {"reason", "SIGTERM"}};
  RunSoFar r = run(/*attempts=*/1, /*max_attempts=*/1);
  r.preemptions = 2;
  RetryPolicy policy = kPolicy;
  policy.max_preemptions = 3;
  const AttemptEnd third = decide_attempt_end(preempted, kPreemptedExitCode, "", r, policy);
  EXPECT_EQ(third.attempt, AttemptState::kPreempted);
  EXPECT_EQ(third.run, RunState::kQueued) << "max_attempts 1 is not spent";
  EXPECT_TRUE(third.attempt_given_back);
  EXPECT_TRUE(third.preempted);
  EXPECT_EQ(third.backoff_seconds, 0);
  EXPECT_EQ(third.reason, "preempted at step 40 (SIGTERM)");
  r.preemptions = 3;
  const AttemptEnd fourth = decide_attempt_end(preempted, kPreemptedExitCode, "", r, policy);
  EXPECT_EQ(fourth.attempt, AttemptState::kPreempted);
  EXPECT_EQ(fourth.run, RunState::kFailed);
  EXPECT_TRUE(fourth.preempted) << "counted even when it fails the run";
  EXPECT_EQ(fourth.reason,
            "preempted at step 40 (SIGTERM); preempted 4 times, more than --max-preemptions 3: "
            "the run never got to finish");
}

TEST(AttemptEnd, AnOutOfMemoryHalvesTheBatchesDownToOneThenFails) {
  RunSoFar r = run(/*attempts=*/1, /*max_attempts=*/1);
  r.batch_size = 24;
  r.micro_batch_size = 12;
  // 12 -> 6 -> 3 -> 1 (the largest divisor of 24 at most half of 3); evaluation 32 -> 16 -> 8 -> 4.
  const std::vector<std::pair<int64_t, int64_t>> expected = {{6, 16}, {3, 8}, {1, 4}};
  for (const auto& [micro, eval] : expected) {
    const AttemptEnd end = decide_attempt_end(out_of_memory("train"), 1, "", r, kPolicy);
    EXPECT_EQ(end.attempt, AttemptState::kFailed);
    EXPECT_EQ(end.run, RunState::kQueued);
    EXPECT_TRUE(end.attempt_given_back);
    EXPECT_EQ(end.micro_batch_size, micro);
    EXPECT_EQ(end.eval_batch_size, eval);
    r.halved_micro_batch_size = end.micro_batch_size;
    r.halved_eval_batch_size = end.eval_batch_size;
  }
  EXPECT_EQ(decide_attempt_end(out_of_memory("evaluation"), 1, "", run(), kPolicy).reason,
            "out of memory in evaluation; retrying with micro-batch 16 x 8 accumulation (global "
            "batch 128), evaluation batch 16")
      << "RunSpec's defaults where the spec names none";
  const AttemptEnd last = decide_attempt_end(out_of_memory("train"), 1, "", r, kPolicy);
  EXPECT_EQ(last.run, RunState::kFailed);
  EXPECT_FALSE(last.micro_batch_size);
  EXPECT_EQ(last.reason, "out of memory in train; micro-batch 1 does not fit either");
}

TEST(AttemptEnd, AnOutOfMemoryWhileLoadingFails) {
  const AttemptEnd end = decide_attempt_end(out_of_memory("load"), 1, "", run(), kPolicy);
  EXPECT_EQ(end.run, RunState::kFailed);
  EXPECT_EQ(end.reason, "out of memory in load; a smaller batch would not help");
}

TEST(AttemptEnd, AReleasedLeaseIsGivenBack) {
  const AttemptEnd end = attempt_given_back(AttemptState::kReleased, "not held by its worker");
  EXPECT_EQ(end.attempt, AttemptState::kReleased);
  EXPECT_EQ(end.run, RunState::kQueued);
  EXPECT_TRUE(end.attempt_given_back);
  EXPECT_FALSE(end.preempted);
}

}  // namespace
}  // namespace tallrec
