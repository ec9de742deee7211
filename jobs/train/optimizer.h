// The optimisation of HF Trainer with optim="adamw_torch": torch.optim.AdamW over the LoRA
// parameters, transformers' get_linear_schedule_with_warmup, and clip_grad_norm_.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "common/run_spec.h"  // AdamWConfig

namespace tallrec {

class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWConfig config);
  // One update with learning rate `lr` (the scheduled one), using each parameter's .grad().
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  // State for checkpoints: first and second moments, in parameter order.
  std::vector<at::Tensor>& exp_avg() { return exp_avg_; }
  std::vector<at::Tensor>& exp_avg_sq() { return exp_avg_sq_; }
  void set_steps(int64_t s) { step_ = s; }

 private:
  std::vector<at::Tensor> params_, exp_avg_, exp_avg_sq_;
  AdamWConfig config_;
  int64_t step_ = 0;
};

// transformers.get_linear_schedule_with_warmup's multiplier at optimizer step `step` (0-based):
// step / warmup during warm-up, then linear decay to 0 at `total_steps`.
double linear_warmup_multiplier(int64_t step, int64_t warmup_steps, int64_t total_steps);

// torch.nn.utils.clip_grad_norm_: scales all gradients by min(1, max_norm / (norm + 1e-6));
// returns the total 2-norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace tallrec
