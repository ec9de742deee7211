// What a LoRA training run holds in device memory, from config.json and the run's settings alone
// (docs/dev/training.md, "GPU memory estimate"): frozen weights by dtype, LoRA weights +
// gradients + AdamW moments in fp32, the activations the trainer's layer keeps for backward
// (jobs/train/lean_ops.h, attention.h) for micro_batch x tokens (all layers, or with gradient
// checkpointing the layer inputs plus one layer), the chunked vocabulary loss, and 1 GiB of CUDA
// context. `tallrec check` compares it with a card; the trainer reports it when it starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/spec_enums.h"

namespace tallrec {

inline constexpr double kGiB = double(1ull << 30);

struct MemoryEstimate {
  double weights = 0, lora = 0, activations = 0, loss = 0, overhead = 0;
  double total() const { return weights + lora + activations + loss + overhead; }
};

// Bytes per weight and activation of a run's dtype.
inline int bytes_per_value(Dtype dtype) { return dtype == Dtype::kFloat32 ? 4 : 2; }

// Bytes one decoder layer keeps for backward per token, activations of `bytes_per_value` bytes.
double layer_bytes_per_token(const LlamaConfig& model, int bytes_per_value, int64_t lora_r,
                             const std::vector<std::string>& targets);

MemoryEstimate estimate_gpu_memory(const LlamaConfig& model, int bytes_per_value, int64_t lora_r,
                                   const std::vector<std::string>& targets, int64_t micro_batch,
                                   int64_t tokens, bool gradient_checkpointing);

}  // namespace tallrec
