#include "common/run_spec.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {
namespace {

// "cpu", "cuda" or "cuda:N" (the trainer's parse_device then checks the machine has it).
bool valid_device_name(const std::string& d) {
  if (d == "cpu" || d == "cuda") return true;
  if (d.rfind("cuda:", 0) != 0 || d.size() == 5 || d.size() > 8) return false;
  return d.find_first_not_of("0123456789", 5) == std::string::npos;
}

// A default as a grid writes it: whole numbers as integers (lora_alpha 16, not 16.0), so that
// run keys (hashes of the spec's JSON) stay what they were when grid.cc kept its own copy.
nlohmann::json grid_number(double v) {
  if (v == double(int64_t(v))) return int64_t(v);
  return v;
}

}  // namespace

const std::vector<GridAxis>& grid_axes() {
  static const std::vector<GridAxis> axes = [] {
    const RunSpec d;
    using json = nlohmann::json;
    auto always = [](const char* name, const char* field, json value) {
      return GridAxis{name, field, std::move(value), true, json()};
    };
    auto optional = [](const char* name, const char* field, json allowed) {
      return GridAxis{name, field, json(), false, std::move(allowed)};
    };
    return std::vector<GridAxis>{
        always("lr", "/optim/lr", grid_number(d.optim.lr)), always("lora_r", "/lora/r", d.lora.r),
        always("lora_alpha", "/lora/alpha", grid_number(d.lora.alpha)),
        always("lora_dropout", "/lora/dropout", grid_number(d.lora.dropout)),
        always("target_modules", "/lora/target_modules", d.lora.target_modules),
        always("epochs", "/epochs", d.epochs), always("cutoff_len", "", kTallrecCutoffLen),
        always("batch_size", "/batch_size", d.batch_size),
        always("micro_batch_size", "/micro_batch_size", d.micro_batch_size),
        always("max_steps", "/max_steps", d.max_steps),  // -1: as many as the epochs make
        optional("dtype", "/dtype", {"float32", "bfloat16", "float16"}),
        optional("gradient_checkpointing", "/gradient_checkpointing", {false, true}),
        optional("group_by_length", "/group_by_length", {false, true}),
        optional("data_order", "/data_order", {"hf", "seeded"}),
        optional("recipe", "/recipe", {"finetune_rec", "instruct_7b"}),
        // TALLRec's oddities, each with its clean way (docs/dev/data.md, docs/dev/training.md):
        // the prompt's literal "# noqa: E501" and the loss on the whole prompt are data options
        // (the worker tokenizes with them); the double softmax is the trainer's scoring.
        optional("template", "", {"tallrec", "clean"}),
        optional("train_on_inputs", "", {true, false}),
        optional("scoring", "/scoring", {"tallrec", "logit_diff"})};
  }();
  return axes;
}

void apply_grid_axes(const nlohmann::json& grid_run, nlohmann::json& spec) {
  for (const GridAxis& axis : grid_axes()) {
    if (axis.spec_field.empty() || !grid_run.contains(axis.name)) continue;
    spec[nlohmann::json::json_pointer(axis.spec_field)] = grid_run[axis.name];
  }
}

int64_t tallrec_eval_every(int64_t sample) {
  if (sample <= 128) return 10;
  return std::max<int64_t>(1, int64_t(double(sample) / 128.0 * 5.0));
}

void apply_recipe(RunSpec& s, const std::string& origin) {
  if (s.recipe == "finetune_rec") return;  // the struct's defaults are finetune_rec.py's
  if (s.recipe == "instruct_7b") {
    s.micro_batch_size = 64;
    s.group_by_length = true;
    s.gradient_checkpointing = true;
    return;
  }
  throw InputError(origin + ": unknown recipe \"" + s.recipe +
                   "\" (expected finetune_rec or instruct_7b)");
}

const std::vector<std::string>& run_spec_fields() {
  static const std::vector<std::string> fields = {"recipe",
                                                  "eval_at_end",
                                                  "base_model",
                                                  "init_adapter",
                                                  "train_tokens",
                                                  "valid_tokens",
                                                  "test_tokens",
                                                  "seed",
                                                  "data_order",
                                                  "data_seed",
                                                  "lora",
                                                  "optim",
                                                  "warmup_steps",
                                                  "max_grad_norm",
                                                  "batch_size",
                                                  "micro_batch_size",
                                                  "epochs",
                                                  "max_steps",
                                                  "eval_every",
                                                  "early_stopping_patience",
                                                  "eval_batch_size",
                                                  "group_by_length",
                                                  "gradient_checkpointing",
                                                  "dtype",
                                                  "loss_scale_init",
                                                  "scoring",
                                                  "loss_normalization",
                                                  "threads",
                                                  "device",
                                                  "world_size",
                                                  "memory_limit_gib"};
  return fields;
}

nlohmann::json run_spec_json(const RunSpec& s) {
  return {{"recipe", s.recipe},
          {"eval_at_end", s.eval_at_end},
          {"base_model", s.base_model},
          {"init_adapter", s.init_adapter},
          {"train_tokens", s.train_tokens},
          {"valid_tokens", s.valid_tokens},
          {"test_tokens", s.test_tokens},
          {"seed", s.seed},
          {"data_order", s.data_order},
          {"data_seed", s.data_seed},
          {"lora",
           {{"r", s.lora.r},
            {"alpha", s.lora.alpha},
            {"dropout", s.lora.dropout},
            {"target_modules", s.lora.target_modules}}},
          {"optim",
           {{"lr", s.optim.lr},
            {"weight_decay", s.optim.weight_decay},
            {"beta1", s.optim.beta1},
            {"beta2", s.optim.beta2},
            {"eps", s.optim.eps}}},
          {"warmup_steps", s.warmup_steps},
          {"max_grad_norm", s.max_grad_norm},
          {"batch_size", s.batch_size},
          {"micro_batch_size", s.micro_batch_size},
          {"epochs", s.epochs},
          {"max_steps", s.max_steps},
          {"eval_every", s.eval_every},
          {"early_stopping_patience", s.early_stopping_patience},
          {"eval_batch_size", s.eval_batch_size},
          {"group_by_length", s.group_by_length},
          {"gradient_checkpointing", s.gradient_checkpointing},
          {"dtype", s.dtype},
          {"loss_scale_init", s.loss_scale_init},
          {"scoring", s.scoring},
          {"loss_normalization", s.loss_normalization},
          {"threads", s.threads},
          {"device", s.device},
          {"world_size", s.world_size},
          {"memory_limit_gib", s.memory_limit_gib}};
}

nlohmann::json resolved_trainer_settings(const nlohmann::json& grid_run) {
  RunSpec s;
  if (grid_run.contains("recipe") && grid_run["recipe"].is_string()) {
    s.recipe = grid_run["recipe"].get<std::string>();
    apply_recipe(s, "run spec");
  }
  nlohmann::json out = run_spec_json(s);
  apply_grid_axes(grid_run, out);
  for (const char* key : {"base_model", "init_adapter", "seed"})
    if (grid_run.contains(key)) out[key] = grid_run[key];
  for (const char* key : {"train_tokens", "valid_tokens", "test_tokens"}) out.erase(key);
  return out;
}

RunSpec read_run_spec(const std::filesystem::path& path) {
  return parse_run_spec(read_file(path), path.string());
}

RunSpec parse_run_spec(const std::string& text, const std::string& origin) {
  const nlohmann::json j = parse_json_from_outside(text, origin);
  if (!j.is_object()) throw InputError(origin + ": a run spec is a JSON object");
  RunSpec s;
  auto get = [&](const nlohmann::json& obj, const char* key, auto& field, const std::string& path) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return false;
    if (!get_exact(*it, field))
      throw InputError(origin + ": field \"" + path + key + "\" has the wrong type or range");
    return true;
  };
  const std::vector<std::string>& known = run_spec_fields();
  for (auto& [key, value] : j.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw InputError(origin + ": unknown field \"" + key + "\"");
    }
  }
  get(j, "recipe", s.recipe, "");
  apply_recipe(s, origin);
  if (!get(j, "base_model", s.base_model, ""))
    throw InputError(origin + ": missing field \"base_model\"");
  if (!get(j, "train_tokens", s.train_tokens, ""))
    throw InputError(origin + ": missing field \"train_tokens\"");
  if (!get(j, "valid_tokens", s.valid_tokens, ""))
    throw InputError(origin + ": missing field \"valid_tokens\"");
  get(j, "init_adapter", s.init_adapter, "");
  get(j, "test_tokens", s.test_tokens, "");
  get(j, "seed", s.seed, "");
  get(j, "data_order", s.data_order, "");
  get(j, "data_seed", s.data_seed, "");
  if (j.contains("lora")) {
    const auto& l = j["lora"];
    get(l, "r", s.lora.r, "lora.");
    get(l, "alpha", s.lora.alpha, "lora.");
    get(l, "dropout", s.lora.dropout, "lora.");
    get(l, "target_modules", s.lora.target_modules, "lora.");
  }
  if (j.contains("optim")) {
    const auto& o = j["optim"];
    get(o, "lr", s.optim.lr, "optim.");
    get(o, "weight_decay", s.optim.weight_decay, "optim.");
    get(o, "beta1", s.optim.beta1, "optim.");
    get(o, "beta2", s.optim.beta2, "optim.");
    get(o, "eps", s.optim.eps, "optim.");
  }
  get(j, "warmup_steps", s.warmup_steps, "");
  get(j, "max_grad_norm", s.max_grad_norm, "");
  get(j, "batch_size", s.batch_size, "");
  get(j, "micro_batch_size", s.micro_batch_size, "");
  get(j, "epochs", s.epochs, "");
  get(j, "max_steps", s.max_steps, "");
  get(j, "eval_every", s.eval_every, "");
  get(j, "early_stopping_patience", s.early_stopping_patience, "");
  get(j, "eval_at_end", s.eval_at_end, "");
  get(j, "eval_batch_size", s.eval_batch_size, "");
  get(j, "group_by_length", s.group_by_length, "");
  get(j, "gradient_checkpointing", s.gradient_checkpointing, "");
  get(j, "dtype", s.dtype, "");
  get(j, "loss_scale_init", s.loss_scale_init, "");
  get(j, "scoring", s.scoring, "");
  get(j, "loss_normalization", s.loss_normalization, "");
  get(j, "threads", s.threads, "");
  get(j, "device", s.device, "");
  get(j, "world_size", s.world_size, "");
  get(j, "memory_limit_gib", s.memory_limit_gib, "");

  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(origin + ": " + what);
  };
  need(s.micro_batch_size > 0 && s.batch_size >= s.micro_batch_size &&
           s.batch_size % s.micro_batch_size == 0,
       "batch_size must be a positive multiple of micro_batch_size");
  need(s.epochs > 0, "epochs must be positive");
  need(s.max_steps == -1 || s.max_steps > 0, "max_steps must be -1 (from epochs) or positive");
  need(s.threads >= 0, "threads must be 0 (all cores) or positive");
  need(s.lora.r > 0 && s.lora.alpha > 0 && s.lora.dropout >= 0 && s.lora.dropout < 1,
       "lora.r and lora.alpha must be positive and lora.dropout in [0, 1)");
  need(!s.lora.target_modules.empty(), "lora.target_modules must name at least one module");
  need(s.eval_every >= 0 && s.early_stopping_patience > 0 && s.eval_batch_size > 0,
       "eval_every, early_stopping_patience and eval_batch_size must be positive");
  need(s.dtype == "float32" || s.dtype == "bfloat16" || s.dtype == "float16",
       "dtype must be float32, bfloat16 or float16");
  need(s.data_order == "hf" || s.data_order == "seeded", "data_order must be hf or seeded");
  need(s.scoring == "tallrec" || s.scoring == "logit_diff",
       "scoring must be tallrec or logit_diff");
  need(s.loss_normalization == "micro_batch_mean" || s.loss_normalization == "token_mean",
       "loss_normalization must be micro_batch_mean or token_mean");
  need(s.world_size >= 1 && (s.batch_size / s.micro_batch_size) % s.world_size == 0,
       "world_size must divide batch_size / micro_batch_size (each rank takes an equal share of "
       "every update)");
  need(valid_device_name(s.device), "device must be cpu, cuda or cuda:N, not \"" + s.device + "\"");
  need(s.world_size == 1 || s.device == "cpu" || s.device == "cuda",
       "with world_size > 1, device must be cpu or cuda (rank r takes the r-th visible GPU), not "
       "one numbered GPU");
  need(s.loss_scale_init >= 1, "loss_scale_init must be at least 1");
  need(s.memory_limit_gib >= 0 && s.memory_limit_gib <= 1e6,
       "memory_limit_gib must be 0 (no cap) or a positive number of GiB");
  need(s.optim.lr > 0 && s.warmup_steps >= 0 && s.max_grad_norm > 0,
       "lr and max_grad_norm must be positive");
  return s;
}

}  // namespace tallrec
