// The order in which a training epoch visits the records.
//
// "hf" (the default) is TALLRec's: the HF Trainer of its day (transformers 4.2x-4.3x) drew one
// int64 from torch's global generator right after set_seed(args.seed), seeded a
// torch.Generator with it, and gave it to a RandomSampler, whose every epoch is the next
// torch.randperm(n) of that generator (and one more, drawn and dropped as the epoch ends), or
// to a LengthGroupedSampler (group_by_length), which draws one randperm per epoch. TALLRec
// never passes a seed to TrainingArguments, so args.seed is 42 for every run: its run seed
// picks the few-shot subset and its order in the token file, not the sampler's. libtorch's
// generator and randperm are the code Python torch runs, so the orders are the same
// (tests/oracle/test_data_order_vs_torch.py checks them against torch's RandomSampler and
// DataLoader and transformers' LengthGroupedSampler).
// "seeded" is a permutation of (seed, epoch) instead: the order then varies with the run seed.
#pragma once

#include <ATen/core/Generator.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/spec_enums.h"
#include "jobs/data/token_file.h"

namespace tallrec {

class EpochOrders {
 public:
  // kHf: `seed` is HF's TrainingArguments.seed (TALLRec: 42); kSeeded: the run's seed.
  // With `group_by_length`, each epoch's order is grouped as HF's LengthGroupedSampler does for
  // update batches of `batch_size` records.
  EpochOrders(const TokenizedDataset& data, DataOrder kind, uint64_t seed, bool group_by_length,
              int64_t batch_size);

  // The record order of `epoch`. Epochs are asked for in increasing order (a resumed run starts
  // at a later one; the ones before it are drawn and dropped, as HF's resume does).
  std::vector<size_t> order(int64_t epoch);

 private:
  std::vector<size_t> permutation(int64_t epoch);

  const TokenizedDataset& data_;
  DataOrder kind_;
  uint64_t seed_;
  bool group_by_length_;
  int64_t batch_size_;
  at::Generator sampler_;  // "hf": the sampler's generator
  int64_t next_epoch_ = 0;
};

// The records of micro-batch `index` of an epoch's order (the last one may be short).
std::vector<size_t> micro_batch(const std::vector<size_t>& order, int64_t index, int64_t size);

}  // namespace tallrec
