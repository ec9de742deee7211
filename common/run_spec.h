// RunSpec: everything one training attempt needs (schemas/run_spec.schema.json), and the one
// place its defaults (TALLRec's recipe) are written. Torch-free: the trainer parses it, the
// coordinator takes a grid's defaults from it, the worker translates a grid run into it
// (grid_axes() below), so the three speak one vocabulary.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/spec_enums.h"

namespace tallrec {

// LoRA as PEFT configures it (jobs/train/lora.h applies it).
struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.05;
  std::vector<std::string> target_modules{"q_proj", "v_proj"};
  double scaling() const { return alpha / double(r); }
};

// torch.optim.AdamW's settings as TALLRec's HF Trainer passes them (jobs/train/optimizer.h).
struct AdamWConfig {
  double lr = 1e-4, weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// What a GPU slot trains in unless the grid names a dtype: LLaMA-7B's weights alone take 27 GB in
// float32, more than the 24 GB card it targets (TALLRec itself trained in float16). The worker
// applies it (worker/prepare_run.cc); the pre-flight's memory estimate assumes it.
inline constexpr Dtype kGpuDefaultDtype = Dtype::kBFloat16;

// TALLRec's cutoff_len: training sequences are cut at this many tokens (a data option, applied
// by `tallrec data tokenize`, not a trainer field).
inline constexpr int64_t kTallrecCutoffLen = 512;

struct RunSpec {
  // Named defaults, applied before the spec's own fields (which win): "finetune_rec" (TALLRec's
  // finetune_rec.py defaults: micro-batch 32) or "instruct_7b" (its shell/instruct_7B.sh as the
  // paper ran it: micro-batch 64, --group_by_length, and gradient checkpointing, which PEFT 0.3's
  // prepare_model_for_int8_training turns on). docs/dev/training.md says where each comes from.
  Recipe recipe = Recipe::kFinetuneRec;
  std::string base_model;                  // HF layout folder
  std::string init_adapter;                // optional PEFT adapter to start from (alpaca-lora)
  std::string train_tokens, valid_tokens;  // `tallrec data tokenize` folders
  std::map<std::string, std::string> test_tokens;  // test-set name -> folder (own and cross domain)
  uint64_t seed = 0;                      // LoRA init, dropout ("seeded" data order: the order too)
  DataOrder data_order = DataOrder::kHf;  // TALLRec's HF Trainer sampler (jobs/train/data_order.h)
  uint64_t data_seed = 42;                // hf: TrainingArguments.seed, which TALLRec leaves at 42
  LoraConfig lora;
  AdamWConfig optim;
  int64_t warmup_steps = 20;
  double max_grad_norm = 1.0;
  int64_t batch_size = 128, micro_batch_size = 32;
  int64_t epochs = 200;
  int64_t max_steps = -1;  // cap on optimizer steps (-1: from epochs)
  int64_t eval_every = 0;  // 0: TALLRec's rule from the sample count
  int64_t early_stopping_patience = 10;
  bool eval_at_end = false;  // HF evaluates every eval_every steps only; true adds the last step
  int64_t eval_batch_size = 32;
  bool group_by_length = false;  // TALLRec's flag: HF's length-grouped micro-batches
  bool gradient_checkpointing =
      false;                         // recompute layers in backward: less memory, ~1/3 more compute
  Dtype dtype = Dtype::kFloat32;     // base weights and activations
  double loss_scale_init = 65536.0;  // float16 only: dynamic loss scaling, as torch's GradScaler
  Scoring scoring = Scoring::kTallrec;  // TALLRec's double softmax
  LossNormalization loss_normalization =
      LossNormalization::kMicroBatchMean;  // TALLRec-era HF; token_mean: over the whole batch
  int threads = 0;
  int world_size = 1;          // data-parallel ranks (c10d Gloo / NCCL), one process each
  std::string device = "cpu";  // "cpu" or "cuda[:N]" (the CUDA path is not tested yet)
  // A cap on the trainer's memory (0: none): on CUDA the caching allocator's per-process memory
  // fraction, on CPU a ceiling on libtorch's CPU allocator (jobs/train/memory_limit.h), so that
  // both really fail past it. An out-of-memory ends the attempt with a `failed` event that says
  // so and where.
  double memory_limit_gib = 0;
};

// The seed of the epoch order (jobs/train/data_order.h): HF's data_seed for "hf", the run's
// seed for "seeded".
inline uint64_t data_order_seed(const RunSpec& s) {
  return s.data_order == DataOrder::kHf ? s.data_seed : s.seed;
}

// Sets the defaults of s.recipe (see RunSpec::recipe).
void apply_recipe(RunSpec& s);

// Every field a spec may have (schemas/run_spec.schema.json must list the same; checked by
// tests/unit/schema_test.cc).
const std::vector<std::string>& run_spec_fields();

// The spec as JSON, every field (parse_run_spec of it gives `s` back).
nlohmann::json run_spec_json(const RunSpec& s);

// Parses and validates a spec file; InputError names the file and the field.
RunSpec read_run_spec(const std::filesystem::path& path);
RunSpec parse_run_spec(const std::string& text, const std::string& origin);

// A hyper-parameter a grid may vary (schemas/grid.schema.json's `hyper`): its name in the grid
// (TALLRec's command-line names), the RunSpec field it sets as a JSON pointer ("" for
// cutoff_len, a data option), and its default, taken from RunSpec. `always` axes are in every
// grid run's spec (and so in its key) with their default when the grid leaves them out; the
// others only when the grid names them, each with the values it allows.
// What each value of an `always` axis must be: the type and range the trainer accepts, so that
// the coordinator refuses a bad one, naming it (coordinator/grid.cc), and not every worker that
// leases the run.
enum class AxisType { kInteger, kNumber, kModules };
struct AxisValues {
  AxisType type = AxisType::kInteger;
  std::string must_be;          // the refusal's words: "hyper.AXIS: VALUE must be ..."
  double least = 0;             // kInteger, kNumber: the smallest value allowed ...
  bool least_excluded = false;  // ... or, for kNumber, the bound the values lie above
  double below = HUGE_VAL;      // kNumber: the bound the values lie below
  std::optional<int64_t> also;  // kInteger: one more value, with a meaning of its own
};
struct GridAxis {
  std::string name;
  std::string spec_field;
  nlohmann::json default_value;  // `always` axes
  bool always = true;
  nlohmann::json allowed;  // the other axes: the values a grid may give
  AxisValues values;       // `always` axes: what each value must be
};
const std::vector<GridAxis>& grid_axes();

// The trainer spec of a grid run: every axis the run holds, set at its RunSpec field in `spec`.
void apply_grid_axes(const nlohmann::json& grid_run, nlohmann::json& spec);

// What the trainer will run a grid run with. A baseline run: its baseline spec
// (common/baseline_spec.h) without the inputs file. An LLM run: RunSpec's defaults, then the
// run's recipe, then its axes, as parse_run_spec resolves the worker's spec (which also names the
// token folders, left out here, and trains in bfloat16 on a GPU unless the grid chose a dtype).
nlohmann::json resolved_trainer_settings(const nlohmann::json& grid_run);

// TALLRec's evaluation cadence: every 10 optimizer steps when sample <= 128, otherwise
// sample / 128 * 5 (rounded down, at least 1).
int64_t tallrec_eval_every(int64_t sample);

}  // namespace tallrec
