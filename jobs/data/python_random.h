// Python's `random` module (MT19937, seeded through init_by_array) for the two places where
// TALLRec's Book-Crossing preprocessing draws from it: random.seed(42) + random.shuffle(list)
// per user, and the user split, which TALLRec leaves unseeded and we seed (docs/dev/data.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tallrec {

class PythonRandom {
 public:
  // random.seed(n) for a non-negative integer n.
  explicit PythonRandom(uint64_t seed);
  uint32_t genrand_uint32();
  // random.getrandbits(k), 1 <= k <= 64.
  uint64_t getrandbits(int k);
  // random._randbelow(n): rejection sampling on n.bit_length() bits.
  uint64_t randbelow(uint64_t n);

  // random.shuffle(items), in place.
  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i-- > 1;) std::swap(items[i], items[size_t(randbelow(i + 1))]);
  }

 private:
  void init_genrand(uint32_t s);
  uint32_t mt_[624];
  int index_ = 625;
};

// The permutation that random.seed(seed); random.shuffle(list(range(n))) produces: element k
// of the result is the original index now at position k.
std::vector<size_t> python_shuffled_indices(size_t n, uint64_t seed);

}  // namespace tallrec
