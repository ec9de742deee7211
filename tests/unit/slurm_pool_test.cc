// The elastic pool's rule (coordinator/slurm_pool.h) on its own; tests/integration/test_slurm.py
// runs it against a real Slurm cluster.
#include <gtest/gtest.h>

#include "coordinator/slurm_pool.h"

namespace tallrec {
namespace {

SlurmPoolOptions pool(int max_workers) {
  SlurmPoolOptions o;
  o.max_workers = max_workers;
  o.idle_seconds = 30;
  o.submissions_per_minute = 2;
  return o;
}

TEST(SlurmPool, NeverSubmitsWhenNothingIsQueued) {
  const PoolDecision d = decide_pool({0, 0, 0, 0}, pool(4), 1e9, 0);
  EXPECT_EQ(d.submit, 0);
  EXPECT_FALSE(d.cancel_pending) << "nothing pending to cancel";
}

TEST(SlurmPool, GrowsToTheDemandUpToMax) {
  EXPECT_EQ(decide_pool({5, 0, 0, 0}, pool(3), 0, 0).submit, 3) << "MAX bounds it";
  EXPECT_EQ(decide_pool({2, 0, 0, 0}, pool(8), 0, 0).submit, 2) << "one task per ready run";
  // Pending tasks and free workers are capacity already: no second array for the same runs.
  EXPECT_EQ(decide_pool({3, 3, 2, 2}, pool(8), 0, 0).submit, 0);
  EXPECT_EQ(decide_pool({5, 2, 2, 2}, pool(3), 0, 0).submit, 1) << "room for one more";
  EXPECT_EQ(decide_pool({5, 0, 0, 3}, pool(3), 0, 0).submit, 0) << "at MAX";
}

TEST(SlurmPool, BoundsSubmissionsPerMinute) {
  EXPECT_EQ(decide_pool({5, 0, 0, 0}, pool(8), 0, 2).submit, 0);
  EXPECT_EQ(decide_pool({5, 0, 0, 0}, pool(8), 0, 1).submit, 5);
}

TEST(SlurmPool, CancelsPendingTasksOnlyAfterTheQueueStayedEmpty) {
  EXPECT_FALSE(decide_pool({0, 2, 2, 2}, pool(4), 29, 0).cancel_pending) << "hysteresis";
  EXPECT_TRUE(decide_pool({0, 2, 2, 2}, pool(4), 30, 0).cancel_pending);
  EXPECT_FALSE(decide_pool({1, 2, 2, 2}, pool(4), 1e9, 0).cancel_pending) << "a run is ready";
}

}  // namespace
}  // namespace tallrec
