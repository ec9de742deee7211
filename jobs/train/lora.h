// LoRA as PEFT implements it: for a target linear layer y = x W^T, the adapted layer is
//   y = x W^T + dropout(x) A^T B^T * (alpha / r)
// with A [r, in] kaiming-uniform(a = sqrt(5)) and B [out, r] zero, so a fresh adapter changes
// nothing. Only A and B train; the base model is frozen.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/run_spec.h"  // LoraConfig

namespace tallrec {

struct LoraPair {
  at::Tensor a;  // [r, in]
  at::Tensor b;  // [out, r]
};

class LoraAdapters {
 public:
  LoraAdapters() = default;
  // Fresh adapters for every target module of every layer, initialised as PEFT does, from a
  // CPU generator seeded with `seed`.
  LoraAdapters(const LlamaConfig& model, LoraConfig config, uint64_t seed, at::ScalarType dtype);

  const LoraConfig& config() const { return config_; }
  // nullptr when (layer, module) is not adapted.
  const LoraPair* find(int64_t layer, const std::string& module) const;
  LoraPair* find(int64_t layer, const std::string& module);
  // Moves every adapter tensor to `device` (the trainer keeps them beside the model).
  void to(const at::Device& device);
  // Every trainable tensor, in a fixed order (layer, module, A then B).
  std::vector<at::Tensor> parameters() const;
  std::vector<std::string> parameter_names() const;  // PEFT's key names, same order

  // PEFT layout: adapter_config.json + adapter_model.safetensors with keys
  // base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (fp32 here).
  void save_peft(const std::filesystem::path& dir, const std::string& base_model_path) const;
  // Loads a PEFT adapter directory (ours or PEFT's own). Throws InputError naming the file for
  // a missing key, a shape that does not fit `model`, or an unsupported setting (bias, DoRA...).
  static LoraAdapters load_peft(const std::filesystem::path& dir, const LlamaConfig& model,
                                at::ScalarType dtype);
  // A starting adapter (the spec's init_adapter, as TALLRec's resume_from_checkpoint): the run's
  // own LoRA settings `want` define the adapters and the file's weights are loaded into them.
  // An adapter whose r, alpha or target modules differ from `want` is an InputError naming both
  // values; dropout is a training setting, not part of the weights: `want`'s applies.
  static LoraAdapters load_peft_into(const std::filesystem::path& dir, const LlamaConfig& model,
                                     const LoraConfig& want, at::ScalarType dtype);

 private:
  LoraConfig config_;
  std::map<std::pair<int64_t, std::string>, LoraPair> pairs_;
};

struct LlamaModel;
// Folds the adapters into the base weights (W += B A * alpha / r), as PEFT's merge_and_unload:
// inference then costs nothing extra. The model's tensors are replaced, not shared.
void merge_lora_into(LlamaModel& model, const LoraAdapters& adapters);

}  // namespace tallrec
