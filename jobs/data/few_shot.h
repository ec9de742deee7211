// TALLRec's few-shot training subset (finetune_rec.py):
//   train = train.shuffle(seed).select(range(sample))   (sample = -1: no select)
//   train = train.shuffle(seed)
// where HF datasets' shuffle(seed) is numpy.random.default_rng(seed).permutation(n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tallrec {

// Indices into the full training set, in training order. `sample` = -1 means all records;
// a sample larger than `n` is an InputError (HF's select would fail too).
std::vector<size_t> few_shot_indices(size_t n, int64_t sample, uint64_t seed);

}  // namespace tallrec
