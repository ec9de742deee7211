// Expected values were printed by numpy 2.3 and CPython 3.11 (the test virtualenv); the
// oracle tests in tests/oracle/ compare against HF datasets itself on many more cases.
#include "common/error.h"
#include "jobs/data/few_shot.h"
#include "jobs/data/numpy_random.h"
#include "jobs/data/python_random.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(NumpyRandom, SeedSequenceState) {
  // np.random.SeedSequence(42).generate_state(4)
  EXPECT_EQ(seed_sequence_state(42, 4),
            (std::vector<uint32_t>{3444837047u, 2669555309u, 2046530742u, 3581440988u}));
  // A seed wider than 32 bits is two entropy words.
  EXPECT_EQ(seed_sequence_state((1ull << 40) + 5, 4),
            (std::vector<uint32_t>{3767146251u, 3672381269u, 2127416108u, 2216012776u}));
}

TEST(NumpyRandom, PermutationMatchesDefaultRng) {
  EXPECT_EQ(numpy_permutation(10, 42), (std::vector<uint64_t>{5, 6, 0, 7, 3, 2, 4, 9, 1, 8}));
  EXPECT_EQ(numpy_permutation(7, 0), (std::vector<uint64_t>{2, 4, 3, 6, 5, 0, 1}));
  EXPECT_TRUE(numpy_permutation(0, 1).empty());
  EXPECT_EQ(numpy_permutation(1, 1), (std::vector<uint64_t>{0}));
}

TEST(PythonRandom, ShuffleMatchesCPython) {
  // random.seed(42); random.shuffle(list(range(10)))
  EXPECT_EQ(python_shuffled_indices(10, 42), (std::vector<size_t>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  EXPECT_EQ(python_shuffled_indices(7, 0), (std::vector<size_t>{4, 2, 1, 0, 5, 3, 6}));
}

TEST(PythonRandom, WideSeedsAndBits) {
  // random.seed(2**33 + 1); random.getrandbits(40), random.getrandbits(64)
  PythonRandom rng((1ull << 33) + 1);
  EXPECT_EQ(rng.getrandbits(40), 105589684279ull);
  EXPECT_EQ(rng.getrandbits(64), 8040421427694741363ull);
}

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
