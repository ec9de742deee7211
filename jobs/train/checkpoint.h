// Checkpoints: everything needed to continue a run bit for bit. A checkpoint folder holds
//   adapter_model.safetensors + adapter_config.json   the LoRA weights (PEFT layout)
//   optimizer.safetensors                              AdamW moments, each rank's dropout RNG
//   states state.json                                         step, data cursor and order,
//   early-stopping state manifest.json                                      SHA-256 of each file
//   above
// It is staged in a temporary folder and renamed into place, so it is whole or absent.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "jobs/train/lora.h"
#include "jobs/train/rng_state.h"

namespace tallrec {

struct TrainerState {
  int64_t global_step = 0;
  int64_t epoch = 0;                    // where training continues:
  int64_t micro_batch = 0;              //   this micro-batch of this epoch
  int64_t cursor_micro_batch_size = 0;  // the micro-batch size `micro_batch` counts in (0: old
                                        // checkpoint, the run's own)
  double best_auc = -1;                 // best validation AUC so far (-1: none yet)
  int64_t best_step = -1;
  int64_t evals_without_improvement = 0;
  int64_t scheduler_steps = 0;  // differs from global_step when fp16 overflow skipped updates
  double loss_scale = 1.0;      // float16 dynamic loss scaling
  int64_t clean_steps = 0;      //   steps since the scale last changed
  nlohmann::json history = nlohmann::json::array();  // every eval: {step, val_auc, val_loss}
};

struct CheckpointData {
  TrainerState state;
  std::vector<at::Tensor> exp_avg, exp_avg_sq;
  std::vector<RngState> rng;  // indexed by rank
  std::string data_order;     // the epoch order it was written under (data_order.h) and its seed:
  std::optional<uint64_t>
      data_seed;  // a resume must not switch orders mid-run (unknown in old checkpoints)
};

// Writes OUT/checkpoints/step-NNNNNNNN and returns its path and the manifest's own SHA-256.
std::pair<std::filesystem::path, std::string> write_checkpoint(
    const std::filesystem::path& checkpoints_dir, const LoraAdapters& adapters,
    const std::string& base_model, const CheckpointData& data);

// The newest checkpoint whose files all match its manifest; nullopt when there is none.
std::optional<std::filesystem::path> newest_valid_checkpoint(
    const std::filesystem::path& checkpoints_dir);

// Reads a checkpoint's state and optimizer files. Anything damaged or mistyped (of any origin:
// the manifest is checked by newest_valid_checkpoint, not here) is an InputError naming the file.
CheckpointData read_checkpoint(const std::filesystem::path& dir, size_t parameter_count);

// Removes all checkpoints but `keep` (the newest and the best, as HF's save_total_limit=1 with
// load_best_model_at_end keeps them).
void prune_checkpoints(const std::filesystem::path& checkpoints_dir,
                       const std::vector<std::filesystem::path>& keep);

}  // namespace tallrec
