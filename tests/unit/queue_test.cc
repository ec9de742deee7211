// The run life cycle in the store: leases, heartbeats, fencing, retries with backoff, cancel and
// retry. Real SQLite files; time is passed in, so no test sleeps.
#include "coordinator/queue.h"

#include "common/error.h"
#include "coordinator/grid.h"
#include "coordinator/store.h"
#include "grid_text.h"
#include "test_paths.h"

namespace tallrec {
namespace {

Grid two_runs(int64_t max_attempts = 3) {
  return parse_grid(test::movie_grid({{"name", "q"}, {"max_attempts", max_attempts}}).dump(),
                    "q.json");
}

const RetryPolicy kPolicy{30, 5, 300};

// A lease for `worker`, known to the registry first as the broker makes sure it is: the queue
// writes no worker rows.
std::optional<Lease> lease(Store& s, const std::string& worker, double t,
                           const RetryPolicy& policy) {
  s.workers.ensure_known(worker, t);
  return s.queue.lease_next(worker, t, policy);
}

TEST(Queue, LeasesOnlyToAWorkerTheRegistryKnows) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  EXPECT_THROW(s.queue.lease_next("stranger", 100, kPolicy), Error);
  EXPECT_TRUE(s.workers.list().empty()) << "the queue added no worker row";
  ASSERT_TRUE(lease(s, "stranger", 100, kPolicy));
  ASSERT_EQ(s.workers.list().size(), 1u);
  EXPECT_EQ(s.workers.list()[0].attempts.size(), 1u);
}

TEST(Queue, LeaseRunFinish) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  auto a = lease(s, "w1", 100, kPolicy);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->attempt_number, 1);
  EXPECT_EQ(a->lease_until, 130);
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kLeased);
  auto b = lease(s, "w2", 100, kPolicy);
  ASSERT_TRUE(b);
  EXPECT_NE(a->run_id, b->run_id);
  EXPECT_FALSE(lease(s, "w3", 100, kPolicy)) << "both runs are taken";
  EXPECT_TRUE(s.queue.mark_running(a->attempt_id, 101));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kRunning);
  EXPECT_TRUE(s.queue.heartbeat(a->attempt_id, 125, kPolicy));
  EXPECT_EQ(s.queue.expire_leases(140, kPolicy), 1) << "b was not renewed; a was (to 155)";
  EXPECT_TRUE(s.queue.finish(a->attempt_id, {{"test_auc", {{"movie", 0.7}}}}, 150));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kSucceeded);
  EXPECT_FALSE(s.queue.finish(a->attempt_id, {{"test_auc", {{"movie", 0.1}}}}, 151))
      << "finished once";
}

TEST(Queue, AZombieAttemptChangesNothing) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  auto first = lease(s, "w1", 100, kPolicy);
  lease(s, "other", 100, kPolicy);
  EXPECT_EQ(s.queue.expire_leases(200, kPolicy), 2);  // w1 went silent (SIGSTOP, a partition...)
  EXPECT_EQ(s.views.run_state(first->run_id), RunState::kQueued);
  auto second = lease(s, "w2", 400, kPolicy);  // after the backoff
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt_number, 2);
  // w1 wakes up and reports on its stale attempt: refused.
  EXPECT_FALSE(s.queue.heartbeat(first->attempt_id, 401, kPolicy));
  EXPECT_FALSE(s.queue.mark_running(first->attempt_id, 401));
  EXPECT_FALSE(s.queue.finish(first->attempt_id, {{"test_auc", {{"movie", 0.9}}}}, 401));
  EXPECT_FALSE(s.queue.fail(first->attempt_id, "late", false, 401, kPolicy));
  EXPECT_EQ(s.views.run_state(second->run_id), RunState::kLeased);
  EXPECT_TRUE(s.queue.finish(second->attempt_id, {{"test_auc", {{"movie", 0.6}}}}, 402));
}

TEST(Queue, RetriesBackOffThenFail) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs(/*max_attempts=*/2));
  auto a = lease(s, "w", 100, kPolicy);
  lease(s, "w", 100, kPolicy);
  EXPECT_TRUE(s.queue.fail(a->attempt_id, "CUDA OOM", /*retryable=*/true, 110, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kQueued);
  EXPECT_FALSE(lease(s, "w", 114, kPolicy)) << "backoff: 5 s after the first failure";
  auto again = lease(s, "w", 115, kPolicy);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->run_id, a->run_id);
  EXPECT_TRUE(s.queue.fail(again->attempt_id, "CUDA OOM", true, 120, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kFailed) << "max_attempts = 2 used";
  EXPECT_TRUE(s.queue.retry(a->run_id, 130));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kQueued);
  auto third = lease(s, "w", 130, kPolicy);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->attempt_number, 3);
  EXPECT_TRUE(s.queue.fail(third->attempt_id, "bad spec", /*retryable=*/false, 131, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kFailed) << "not retryable: fails at once";
}

TEST(Queue, APreemptionRequeuesAtOnceAndSpendsNoAttempt) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs(/*max_attempts=*/1));
  RetryPolicy policy = kPolicy;
  policy.max_preemptions = 3;
  auto a = lease(s, "w1", 100, policy);
  ASSERT_TRUE(a);
  lease(s, "w2", 100, policy);  // the other run is busy elsewhere
  for (int k = 1; k <= 3; ++k) {
    ASSERT_TRUE(s.queue.record_event(
        a->attempt_id, 1, {{"type", "preempted"}, {"step", 10 * k}, {"reason", "SIGTERM"}}));
    EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 75, "", 100 + k, policy));
    EXPECT_EQ(s.views.run_state(a->run_id), RunState::kQueued) << "preemption " << k;
    auto next = lease(s, "w1", 100 + k, policy);  // at once: no backoff
    ASSERT_TRUE(next) << "preemption " << k << " made the run wait";
    EXPECT_EQ(next->attempt_number, 1) << "max_attempts is 1: a preemption spent no attempt";
    a = next;
  }
  // The fourth preemption is past max_preemptions: the run fails, saying why.
  ASSERT_TRUE(s.queue.record_event(a->attempt_id, 1,
                                   {{"type", "preempted"}, {"step", 40}, {"reason", "SIGUSR1"}}));
  EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 75, "", 110, policy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kFailed);
  const auto rows = s.views.runs("", RunState::kFailed);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].reason.find("preempted at step 40 (SIGUSR1)"), std::string::npos)
      << rows[0].reason;
  EXPECT_NE(rows[0].reason.find("more than --max-preemptions 3"), std::string::npos)
      << rows[0].reason;
}

TEST(Queue, TheQueueDecidesHowAReportedAttemptEnded) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs(/*max_attempts=*/2));
  auto a = lease(s, "w1", 100, kPolicy);
  auto b = lease(s, "w2", 100, kPolicy);
  // Exit 0 without a `finished` event is not a success; a killed trainer is retried after backoff.
  EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 0, "", 101, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kQueued);
  EXPECT_FALSE(lease(s, "w1", 102, kPolicy)) << "a failure backs off";
  // A failed event that says not retryable fails the run at once.
  ASSERT_TRUE(s.queue.record_event(
      b->attempt_id, 1, {{"type", "failed"}, {"reason", "bad data"}, {"retryable", false}}));
  EXPECT_TRUE(s.queue.end_reported(b->attempt_id, 2, "", 101, kPolicy));
  EXPECT_EQ(s.views.run_state(b->run_id), RunState::kFailed);
  EXPECT_FALSE(s.queue.end_reported(b->attempt_id, 0, "", 102, kPolicy)) << "stale";
}

nlohmann::json out_of_memory(const std::string& phase, int64_t micro) {
  return {{"type", "failed"},
          {"reason", "out of memory in " + phase},
          {"retryable", true},
          {"out_of_memory",
           {{"phase", phase}, {"step", 1}, {"micro_batch_size", micro}, {"eval_batch_size", 32}}}};
}

TEST(Queue, AnOutOfMemoryHalvesTheMicroBatchKeepingTheGlobalBatch) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  const nlohmann::json g =
      test::movie_grid({{"name", "m"},
                        {"seeds", {0}},
                        {"max_attempts", 1},
                        {"hyper", {{"batch_size", {24}}, {"micro_batch_size", {12}}}}});
  s.queue.submit(parse_grid(g.dump(), "m.json"));
  auto a = lease(s, "w1", 100, kPolicy);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->micro_batch_size) << "the spec's own at first";
  // 12 -> 6 -> 3 -> 1 (the largest divisor of 24 at most half of 3), then the run fails.
  for (int64_t expected : {6, 3, 1}) {
    ASSERT_TRUE(s.queue.record_event(a->attempt_id, 1, out_of_memory("train", 0)));
    EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 1, "", 101, kPolicy));
    auto next = lease(s, "w1", 101, kPolicy);  // at once, and max_attempts 1 is not spent
    ASSERT_TRUE(next) << "before micro-batch " << expected;
    EXPECT_EQ(next->micro_batch_size, expected);
    EXPECT_EQ(next->attempt_number, 1);
    a = next;
  }
  EXPECT_EQ(a->eval_batch_size, 4) << "32 halved three times";
  const auto detail = s.views.run_detail(a->run_id);
  ASSERT_TRUE(detail);
  EXPECT_EQ((*detail)["attempts"].back()["micro_batch_size"], 1);
  ASSERT_TRUE(s.queue.record_event(a->attempt_id, 1, out_of_memory("train", 1)));
  EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 1, "", 102, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kFailed);
  EXPECT_NE(s.views.runs("", RunState::kFailed)[0].reason.find("micro-batch 1 does not fit either"),
            std::string::npos);
}

TEST(Queue, AnOutOfMemoryWhileLoadingIsNotHalved) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  auto a = lease(s, "w1", 100, kPolicy);
  ASSERT_TRUE(s.queue.record_event(a->attempt_id, 1, out_of_memory("load", 32)));
  EXPECT_TRUE(s.queue.end_reported(a->attempt_id, 1, "", 101, kPolicy));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kFailed);
}

TEST(Queue, SweepEtaFromFinishedAttempts) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  EXPECT_LT(s.views.status()[0].eta_seconds, 0);  // nothing finished: unknown
  auto a = lease(s, "w", 100, kPolicy);
  ASSERT_TRUE(s.queue.finish(a->attempt_id, {{"test_auc", {{"movie", 0.5}}}}, 160));
  EXPECT_DOUBLE_EQ(s.views.status()[0].eta_seconds, 60.0);  // 60 s each x 1 queued / 1
  lease(s, "w", 170, kPolicy);
  EXPECT_DOUBLE_EQ(s.views.status()[0].eta_seconds, 60.0);  // 1 leased (counts whole) / 1 in flight
}

// A Table 1 sweep mixes baselines of seconds with LLM runs of hours: each method's runs are
// counted at its own mean, and while the LLM has finished none the ETA is unknown, not the
// baselines' seconds.
TEST(Queue, SweepEtaCountsEachMethodAtItsOwnPace) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  // movie x 1 sample x 2 seeds x {caser, llm}: run 1 caser seed 0, 2 llm seed 0, 3 caser, 4 llm.
  s.queue.submit(parse_grid(test::movie_grid({{"name", "q"}, {"methods", {"caser", "llm"}}}).dump(),
                            "q.json"));
  auto a = lease(s, "w", 100, kPolicy);  // a caser run: 2 s
  ASSERT_TRUE(s.queue.finish(a->attempt_id, {{"test_auc", {{"movie", 0.5}}}}, 102));
  EXPECT_LT(s.views.status()[0].eta_seconds, 0) << "no LLM run has finished: unknown";
  auto b = lease(s, "w", 110, kPolicy);  // the LLM's: 1000 s
  ASSERT_TRUE(s.queue.finish(b->attempt_id, {{"test_auc", {{"movie", 0.5}}}}, 1110));
  // One caser (2 s) and one LLM run (1000 s) queued, nothing in flight.
  EXPECT_DOUBLE_EQ(s.views.status()[0].eta_seconds, 1002.0);
}

TEST(Queue, CancelFencesTheAttempt) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.queue.submit(two_runs());
  auto a = lease(s, "w", 100, kPolicy);
  EXPECT_TRUE(s.queue.cancel(a->run_id, 101));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kCanceled);
  EXPECT_EQ(s.changes.since(0).back().body, (nlohmann::json{{"run", a->run_id},
                                                            {"state", "canceled"},
                                                            {"attempt", a->attempt_id},
                                                            {"attempt_state", "canceled"}}))
      << "the change feed names the attempt that ended with the run";
  EXPECT_FALSE(s.queue.finish(a->attempt_id, {{"test_auc", {{"movie", 0.5}}}}, 102));
  EXPECT_FALSE(s.queue.cancel(a->run_id, 103)) << "already canceled";
  EXPECT_TRUE(s.queue.retry(a->run_id, 104));
  EXPECT_EQ(s.views.run_state(a->run_id), RunState::kQueued);
  EXPECT_EQ(s.database.integrity_check(), "ok");
}

}  // namespace
}  // namespace tallrec
