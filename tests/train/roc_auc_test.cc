#include "jobs/train/roc_auc.h"

#include <gtest/gtest.h>

namespace tallrec {
namespace {

TEST(RocAuc, DegenerateInputIsAClearError) {
  EXPECT_THROW(roc_auc({1, 1, 1}, {0.1, 0.2, 0.3}), std::exception);
  EXPECT_THROW(roc_auc({0, 1}, {0.1}), std::exception);
  EXPECT_DOUBLE_EQ(roc_auc({0, 1}, {0.1, 0.9}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0, 1, 0, 1}, {0.5, 0.5, 0.5, 0.5}), 0.5);
}

}  // namespace
}  // namespace tallrec
