#include "jobs/data/few_shot.h"

#include <string>

#include "common/error.h"
#include "jobs/data/numpy_random.h"

namespace tallrec {

std::vector<size_t> few_shot_indices(size_t n, int64_t sample, uint64_t seed) {
  if (sample < -1)
    throw InputError("sample must be -1 (all) or a count >= 0, got " + std::to_string(sample));
  if (sample > int64_t(n)) {
    throw InputError("sample " + std::to_string(sample) + " exceeds the " + std::to_string(n) +
                     " training records");
  }
  auto first = numpy_permutation(n, seed);
  size_t kept = sample == -1 ? n : size_t(sample);
  auto second = numpy_permutation(kept, seed);
  std::vector<size_t> indices(kept);
  for (size_t k = 0; k < kept; ++k) indices[k] = size_t(first[second[k]]);
  return indices;
}

}  // namespace tallrec
