// One micro-batch forward and back: the trainer's loss step, and `tallrec-train gradients`
// (the same computation, for checks against HF + PEFT).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "jobs/train/collate.h"
#include "jobs/train/llama.h"
#include "jobs/train/lora.h"

namespace tallrec {

struct LossStepResult {
  double mean_loss = 0;      // the micro-batch's loss as HF reports it: mean over label tokens
  int64_t label_tokens = 0;  // next-token positions with a label
};

// Forward with `lora` (dropout when `training`), the causal-LM loss summed over label tokens,
// divided by divisor(label_tokens) and multiplied by `loss_scale`, back-propagated: the
// adapters' .grad() accumulate.
LossStepResult loss_step(const LlamaModel& model, const LoraAdapters& lora, const Batch& batch,
                         bool training, bool gradient_checkpointing,
                         const std::function<double(int64_t)>& divisor, double loss_scale = 1.0);

struct MicroBatchGradients {
  double loss = 0;  // HF's: mean over label tokens
  int64_t label_tokens = 0;
  std::vector<at::Tensor> grads;  // d loss / d tensor, in lora.parameters() order
};

// The gradient of HF's mean loss of one micro-batch, dropout off, from zeroed gradients.
MicroBatchGradients micro_batch_gradients(const LlamaModel& model, const LoraAdapters& lora,
                                          const Batch& batch, bool gradient_checkpointing);

}  // namespace tallrec
