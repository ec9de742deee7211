// Expected values were printed by numpy 2.3 (the test virtualenv); the oracle tests in
// tests/oracle/ compare against HF datasets itself on many more cases.
#include "jobs/data/numpy_random.h"

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

}  // namespace
}  // namespace tallrec
