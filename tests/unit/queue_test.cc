// The run life cycle in the store: leases, heartbeats, fencing, retries with backoff, cancel,
// retry, and the results table. Real SQLite files; time is passed in, so no test sleeps.
#include "coordinator/grid.h"
#include "coordinator/results.h"
#include "coordinator/store.h"
#include "test_paths.h"

namespace tallrec {
namespace {

Grid two_runs(int64_t max_attempts = 3) {
  nlohmann::json g = {{"name", "q"}, {"base_model", "/models/llama-7b"}, {"tokenizer", "/t"},
                      {"datasets", {{"movie", {{"train", "a"}, {"valid", "b"}, {"test", "c"}}}}},
                      {"domains", {"movie"}}, {"samples", {16}}, {"seeds", {0, 1}}, {"max_attempts", max_attempts}};
  return parse_grid(g.dump(), "q.json");
}

const RetryPolicy kPolicy{30, 5, 300};

TEST(Queue, LeaseRunFinish) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.submit(two_runs());
  auto a = s.lease_next("w1", 100, kPolicy);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->attempt_number, 1);
  EXPECT_EQ(a->lease_until, 130);
  EXPECT_EQ(s.run_state(a->run_id), "leased");
  auto b = s.lease_next("w2", 100, kPolicy);
  ASSERT_TRUE(b);
  EXPECT_NE(a->run_id, b->run_id);
  EXPECT_FALSE(s.lease_next("w3", 100, kPolicy)) << "both runs are taken";
  EXPECT_TRUE(s.mark_running(a->attempt_id, 101));
  EXPECT_EQ(s.run_state(a->run_id), "running");
  EXPECT_TRUE(s.heartbeat(a->attempt_id, 125, kPolicy));
  EXPECT_EQ(s.expire_leases(140, kPolicy), 1) << "b was not renewed; a was (to 155)";
  EXPECT_TRUE(s.finish(a->attempt_id, {{"test_auc", {{"movie", 0.7}}}}, 150));
  EXPECT_EQ(s.run_state(a->run_id), "succeeded");
  EXPECT_FALSE(s.finish(a->attempt_id, {{"test_auc", {{"movie", 0.1}}}}, 151)) << "finished once";
}

TEST(Queue, AZombieAttemptChangesNothing) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.submit(two_runs());
  auto first = s.lease_next("w1", 100, kPolicy);
  s.lease_next("other", 100, kPolicy);
  EXPECT_EQ(s.expire_leases(200, kPolicy), 2);  // w1 went silent (SIGSTOP, a partition...)
  EXPECT_EQ(s.run_state(first->run_id), "queued");
  auto second = s.lease_next("w2", 400, kPolicy);  // after the backoff
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt_number, 2);
  // w1 wakes up and reports on its stale attempt: refused.
  EXPECT_FALSE(s.heartbeat(first->attempt_id, 401, kPolicy));
  EXPECT_FALSE(s.mark_running(first->attempt_id, 401));
  EXPECT_FALSE(s.finish(first->attempt_id, {{"test_auc", {{"movie", 0.9}}}}, 401));
  EXPECT_FALSE(s.fail(first->attempt_id, "late", false, 401, kPolicy));
  EXPECT_EQ(s.run_state(second->run_id), "leased");
  EXPECT_TRUE(s.finish(second->attempt_id, {{"test_auc", {{"movie", 0.6}}}}, 402));
}

TEST(Queue, RetriesBackOffThenFail) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.submit(two_runs(/*max_attempts=*/2));
  auto a = s.lease_next("w", 100, kPolicy);
  s.lease_next("w", 100, kPolicy);
  EXPECT_TRUE(s.fail(a->attempt_id, "CUDA OOM", /*retryable=*/true, 110, kPolicy));
  EXPECT_EQ(s.run_state(a->run_id), "queued");
  EXPECT_FALSE(s.lease_next("w", 114, kPolicy)) << "backoff: 5 s after the first failure";
  auto again = s.lease_next("w", 115, kPolicy);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->run_id, a->run_id);
  EXPECT_TRUE(s.fail(again->attempt_id, "CUDA OOM", true, 120, kPolicy));
  EXPECT_EQ(s.run_state(a->run_id), "failed") << "max_attempts = 2 used";
  EXPECT_TRUE(s.retry(a->run_id, 130));
  EXPECT_EQ(s.run_state(a->run_id), "queued");
  auto third = s.lease_next("w", 130, kPolicy);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->attempt_number, 3);
  EXPECT_TRUE(s.fail(third->attempt_id, "bad spec", /*retryable=*/false, 131, kPolicy));
  EXPECT_EQ(s.run_state(a->run_id), "failed") << "not retryable: fails at once";
}

TEST(Queue, CancelFencesTheAttempt) {
  test::ScratchDir dir;
  Store s(dir / "q.db");
  s.submit(two_runs());
  auto a = s.lease_next("w", 100, kPolicy);
  EXPECT_TRUE(s.cancel(a->run_id, 101));
  EXPECT_EQ(s.run_state(a->run_id), "canceled");
  EXPECT_FALSE(s.finish(a->attempt_id, {{"test_auc", {{"movie", 0.5}}}}, 102));
  EXPECT_FALSE(s.cancel(a->run_id, 103)) << "already canceled";
  EXPECT_TRUE(s.retry(a->run_id, 104));
  EXPECT_EQ(s.run_state(a->run_id), "queued");
  EXPECT_EQ(s.integrity_check(), "ok");
}

TEST(Results, TableOneMeanAndStdOverSeeds) {
  auto spec = [](const char* domain, int64_t sample, uint64_t seed) {
    return nlohmann::json{{"domain", domain}, {"sample", sample}, {"seed", seed}, {"base_model", "/m/llama-7b"}};
  };
  auto done = [](double movie, double book) { return nlohmann::json{{"test_auc", {{"movie", movie}, {"book", book}}}}; };
  ResultsTable t = build_results_table({{spec("movie", 16, 0), done(0.6, 0.5)},
                                        {spec("movie", 16, 1), done(0.8, 0.7)},
                                        {spec("movie", 64, 0), done(0.7, 0.6)}});
  ASSERT_EQ(t.rows, (std::vector<std::string>{"movie -> book", "movie -> movie"}));
  EXPECT_EQ(t.samples, (std::vector<int64_t>{16, 64}));
  EXPECT_NEAR(t.cells[1][0].mean, 0.7, 1e-12);
  EXPECT_NEAR(t.cells[1][0].std, 0.1, 1e-12);
  EXPECT_EQ(t.cells[1][1].runs, 1);
  EXPECT_EQ(t.tallrec_json["movie"]["book"]["llama-7b"]["1"]["16"], 0.7);
  EXPECT_NE(format_results_table(t).find("0.7000 +- 0.1000"), std::string::npos);
}

}  // namespace
}  // namespace tallrec
