// Expected values were printed by CPython 3.11 (the test virtualenv).
#include "jobs/data/python_random.h"

#include "test_paths.h"

namespace tallrec {
namespace {

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

}  // namespace
}  // namespace tallrec
