// The trainer's step arithmetic (jobs/train/step_plan.h) against HF Trainer 4.28's loop,
// written out by hand for small cases.
#include "jobs/train/step_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace tallrec {
namespace {

std::vector<int64_t> step_points(const StepPlan& p) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < p.micro_per_epoch; ++i)
    if (p.steps_after(i)) out.push_back(i);
  return out;
}

TEST(StepPlan, HfAccumulationStepsOnFullGroupsAndCarriesLeftovers) {
  // 20 records, micro 4 -> 5 micro-batches; batch 8 -> accumulation 2: steps after 1 and 3;
  // micro-batch 4 carries its gradient into the next epoch's first step (HF 4.28).
  StepPlan p = plan_steps(20, 4, 8, /*hf_accumulation=*/true, /*epochs=*/3, /*max_steps=*/-1);
  EXPECT_EQ(p.micro_per_epoch, 5);
  EXPECT_EQ(p.accumulation, 2);
  EXPECT_EQ(p.steps_per_epoch, 2);
  EXPECT_EQ(p.total_steps, 6);
  EXPECT_EQ(step_points(p), (std::vector<int64_t>{1, 3}));
}

TEST(StepPlan, HfAccumulationStepsAtEpochEndWhenTheEpochIsShorterThanOneGroup) {
  // 16 records, micro 4, batch 128 -> accumulation 32 > 4 micro-batches: one step at the end.
  StepPlan p = plan_steps(16, 4, 128, true, 200, -1);
  EXPECT_EQ(p.steps_per_epoch, 1);
  EXPECT_EQ(p.total_steps, 200);
  EXPECT_EQ(step_points(p), (std::vector<int64_t>{3}));
}

TEST(StepPlan, TokenMeanStepsOnEveryPartialGroupToo) {
  StepPlan p = plan_steps(20, 4, 8, /*hf_accumulation=*/false, 3, -1);
  EXPECT_EQ(p.steps_per_epoch, 3);
  EXPECT_EQ(step_points(p), (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(p.update_group(4), (std::pair<int64_t, int64_t>{4, 5}));
  EXPECT_EQ(p.update_group(3), (std::pair<int64_t, int64_t>{2, 4}));
}

TEST(StepPlan, MaxStepsCapsTheTotal) {
  EXPECT_EQ(plan_steps(20, 4, 8, true, 200, 7).total_steps, 7);
}

TEST(StepPlan, RanksTakeEqualContiguousSharesOfEveryUpdate) {
  StepPlan p = plan_steps(64, 2, 16, true, 1, -1);  // accumulation 8
  std::vector<int> owners;
  for (int64_t i = 0; i < 16; ++i) owners.push_back(p.owner(i, 2));
  EXPECT_EQ(owners, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(p.owner(5, 1), 0);
}

TEST(StepPlan, LossDivisors) {
  StepPlan hf = plan_steps(20, 4, 8, true, 1, -1);
  EXPECT_DOUBLE_EQ(hf.loss_divisor(30, 999), 60.0);  // mean over its own tokens, / accumulation
  EXPECT_DOUBLE_EQ(hf.loss_divisor(0, 999), 2.0);    // no label: never a division by zero
  StepPlan tm = plan_steps(20, 4, 8, false, 1, -1);
  EXPECT_DOUBLE_EQ(tm.loss_divisor(30, 70), 70.0);  // the update group's label tokens
}

}  // namespace
}  // namespace tallrec
