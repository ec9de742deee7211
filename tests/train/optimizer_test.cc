#include "jobs/train/optimizer.h"

#include <gtest/gtest.h>

namespace tallrec {
namespace {

TEST(Optimizer, WarmupThenLinearDecay) {
  EXPECT_EQ(linear_warmup_multiplier(0, 20, 100), 0.0);
  EXPECT_EQ(linear_warmup_multiplier(10, 20, 100), 0.5);
  EXPECT_EQ(linear_warmup_multiplier(20, 20, 100), 1.0);
  EXPECT_EQ(linear_warmup_multiplier(60, 20, 100), 0.5);
  EXPECT_EQ(linear_warmup_multiplier(100, 20, 100), 0.0);
  EXPECT_EQ(linear_warmup_multiplier(150, 20, 100), 0.0);
}

}  // namespace
}  // namespace tallrec
