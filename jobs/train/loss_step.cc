#include "jobs/train/loss_step.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "jobs/train/scoring.h"

namespace tallrec {

LossStepResult loss_step(const LlamaModel& model, const LoraAdapters& lora, const Batch& batch,
                         bool training, bool gradient_checkpointing,
                         const std::function<double(int64_t)>& divisor, double loss_scale) {
  // Positions 0..T-1 even with left padding, as HF's Trainer passes no position_ids.
  at::Tensor hidden = llama_hidden(model, batch.input_ids, batch.attention_mask, at::Tensor(),
                                   {&lora, training, gradient_checkpointing});
  auto [sum, count] = causal_lm_loss_sum(model, hidden, batch.labels);
  (sum * (loss_scale / divisor(count))).backward();
  return {sum.item<double>() / double(std::max<int64_t>(count, 1)), count};
}

MicroBatchGradients micro_batch_gradients(const LlamaModel& model, const LoraAdapters& lora,
                                          const Batch& batch, bool gradient_checkpointing) {
  at::AutoGradMode enable(true);
  std::vector<at::Tensor> params = lora.parameters();
  for (auto& p : params) {
    p.requires_grad_(true);
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
  const LossStepResult r =
      loss_step(model, lora, batch, /*training=*/false, gradient_checkpointing,
                [](int64_t count) { return double(std::max<int64_t>(count, 1)); });
  MicroBatchGradients g{r.mean_loss, r.label_tokens, {}};
  for (auto& p : params) g.grads.push_back(p.grad().defined() ? p.grad() : at::zeros_like(p));
  return g;
}

}  // namespace tallrec
