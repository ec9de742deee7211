// The step arithmetic of TALLRec's HF Trainer, apart from any tensor: how many micro-batches
// an epoch has, after which of them the optimizer steps, which rank computes which, and what
// each micro-batch's loss is divided by. Unit-tested in tests/train/step_plan_test.cc.
#pragma once

#include <cstdint>
#include <utility>

namespace tallrec {

struct StepPlan {
  int64_t records = 0;       // training records per epoch
  int64_t micro_batch = 1;   // records per micro-batch (the last one of an epoch may hold fewer)
  int64_t accumulation = 1;  // micro-batches per optimizer step: batch_size / micro_batch_size
  bool hf_accumulation =
      true;  // loss_normalization "micro_batch_mean" (TALLRec-era HF); else "token_mean"
  int64_t micro_per_epoch = 0;  // ceil(records / micro_batch)
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;  // max_steps when > 0, else epochs x steps_per_epoch

  // Whether the optimizer steps after micro-batch i (0-based) of an epoch. HF 4.28:
  // (i + 1) % accumulation == 0, or the epoch's last micro-batch when the epoch has no more than
  // `accumulation` of them; leftovers otherwise carry their gradient into the next epoch's first
  // step. token_mean: also at every epoch's end (a partial group steps).
  bool steps_after(int64_t i) const;
  // token_mean: the micro-batches [first, end) of the update group that micro-batch i is in.
  std::pair<int64_t, int64_t> update_group(int64_t i) const;
  // Data parallel: the rank that computes micro-batch i; each rank takes an equal contiguous
  // share of every update's micro-batches (accumulation is a multiple of world_size).
  int owner(int64_t i, int world_size) const;
  // The divisor of a micro-batch's summed loss: micro_batch_mean divides its own mean by the
  // accumulation (label_tokens x accumulation); token_mean divides by the whole update group's
  // label tokens. Never 0.
  double loss_divisor(int64_t micro_label_tokens, int64_t group_label_tokens) const;
};

// `max_steps` <= 0 means "from epochs".
StepPlan plan_steps(int64_t records, int64_t micro_batch_size, int64_t batch_size,
                    bool hf_accumulation, int64_t epochs, int64_t max_steps);

}  // namespace tallrec
