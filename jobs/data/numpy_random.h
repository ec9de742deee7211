// numpy's default_rng(seed).permutation(n), bit for bit: SeedSequence -> PCG64 (XSL-RR 128/64)
// -> Generator.shuffle's Fisher-Yates with masked rejection sampling (random_interval).
// HF datasets' Dataset.shuffle(seed) is exactly this permutation, so TALLRec's few-shot subsets
// are reproducible without Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tallrec {

class NumpyPcg64 {
 public:
  // Seeded as numpy.random.default_rng(seed) is: through SeedSequence(seed).
  explicit NumpyPcg64(uint64_t seed);
  uint64_t next_uint64();
  // numpy buffers the upper half of a 64-bit draw for the next 32-bit request.
  uint32_t next_uint32();
  // Uniform in [0, max], numpy's random_interval (bit-mask rejection).
  uint64_t random_interval(uint64_t max);

 private:
  unsigned __int128 state_;
  unsigned __int128 increment_;
  bool has_uint32_ = false;
  uint32_t buffered_uint32_ = 0;
};

// numpy.random.default_rng(seed).permutation(n).
std::vector<uint64_t> numpy_permutation(uint64_t n, uint64_t seed);

// numpy.random.SeedSequence(seed).generate_state(n_words, np.uint32), exposed for tests.
std::vector<uint32_t> seed_sequence_state(uint64_t seed, size_t n_words);

}  // namespace tallrec
