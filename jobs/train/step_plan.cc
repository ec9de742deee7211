#include "jobs/train/step_plan.h"

#include <algorithm>

namespace tallrec {

StepPlan plan_steps(int64_t records, int64_t micro_batch_size, int64_t batch_size,
                    bool hf_accumulation, int64_t epochs, int64_t max_steps) {
  StepPlan p;
  p.records = records;
  p.micro_batch = micro_batch_size;
  p.accumulation = batch_size / micro_batch_size;
  p.hf_accumulation = hf_accumulation;
  p.micro_per_epoch = (records + micro_batch_size - 1) / micro_batch_size;
  // HF 4.28: num_update_steps_per_epoch = max(len(dataloader) // accumulation, 1).
  p.steps_per_epoch = hf_accumulation ? std::max<int64_t>(p.micro_per_epoch / p.accumulation, 1)
                                      : (p.micro_per_epoch + p.accumulation - 1) / p.accumulation;
  p.total_steps = max_steps > 0 ? max_steps : epochs * p.steps_per_epoch;
  return p;
}

bool StepPlan::steps_after(int64_t i) const {
  const bool last = i + 1 == micro_per_epoch;
  if ((i + 1) % accumulation == 0) return true;
  return hf_accumulation ? (micro_per_epoch <= accumulation && last) : last;
}

std::pair<int64_t, int64_t> StepPlan::update_group(int64_t i) const {
  const int64_t first = i - i % accumulation;
  return {first, std::min(micro_per_epoch, first + accumulation)};
}

int StepPlan::owner(int64_t i, int world_size) const {
  return int((i % accumulation) / (accumulation / world_size));
}

double StepPlan::loss_divisor(int64_t micro_label_tokens, int64_t group_label_tokens) const {
  return hf_accumulation ? double(std::max<int64_t>(micro_label_tokens, 1)) * double(accumulation)
                         : double(std::max<int64_t>(group_label_tokens, 1));
}

}  // namespace tallrec
