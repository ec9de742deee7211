// The few-shot subset is shuffle, select, shuffle, each shuffle numpy's permutation (as in HF
// datasets); the oracle tests in tests/oracle/ compare against HF datasets itself on many more
// cases.
#include "jobs/data/few_shot.h"

#include "common/error.h"
#include "jobs/data/numpy_random.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(FewShot, ChainIsShuffleSelectShuffle) {
  auto first = numpy_permutation(100, 7);
  auto second = numpy_permutation(16, 7);
  auto got = few_shot_indices(100, 16, 7);
  ASSERT_EQ(got.size(), 16u);
  for (size_t k = 0; k < 16; ++k) EXPECT_EQ(got[k], first[second[k]]);
}

TEST(FewShot, AllMeansShuffledTwiceAndBadSamplesAreErrors) {
  auto all = few_shot_indices(50, -1, 3);
  EXPECT_EQ(all.size(), 50u);
  std::vector<size_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_THROW(few_shot_indices(50, 51, 3), InputError);
  EXPECT_THROW(few_shot_indices(50, -2, 3), InputError);
  EXPECT_TRUE(few_shot_indices(50, 0, 3).empty());
}

}  // namespace
}  // namespace tallrec
