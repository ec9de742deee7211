// The order in which a training epoch visits the records.
#pragma once

#include <cstdint>
#include <vector>

#include "jobs/data/token_file.h"

namespace tallrec {

// A seeded permutation per epoch. (HF's RandomSampler draws from torch's generator; that order
// is not reproduced.)
std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch);

// HF's group_by_length (LengthGroupedSampler): the order cut into megabatches of 50 update
// batches, each sorted by length, longest first; the longest sequence overall leads, so an
// out-of-memory error shows on the first step. Similar lengths share micro-batches.
std::vector<size_t> group_by_length(std::vector<size_t> order, const TokenizedDataset& data, size_t batch);

}  // namespace tallrec
