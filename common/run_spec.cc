#include "common/run_spec.h"

#include <algorithm>
#include <functional>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
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
    auto always = [](const char* name, const char* field, json value, AxisValues values) {
      return GridAxis{name, field, std::move(value), true, json(), std::move(values)};
    };
    auto optional = [](const char* name, const char* field, json allowed) {
      return GridAxis{name, field, json(), false, std::move(allowed), {}};
    };
    auto numbers = [](double least, bool least_excluded, double below, const char* must_be) {
      return AxisValues{AxisType::kNumber, must_be, least, least_excluded, below, std::nullopt};
    };
    auto integers = [](int64_t least, const char* must_be,
                       std::optional<int64_t> also = std::nullopt) {
      return AxisValues{AxisType::kInteger, must_be, double(least), false, HUGE_VAL, also};
    };
    const AxisValues positive_integer = integers(1, "a positive integer");
    const AxisValues positive_number =
        numbers(0, /*least_excluded=*/true, HUGE_VAL, "a positive number");
    return std::vector<GridAxis>{
        always("lr", "/optim/lr", grid_number(d.optim.lr), positive_number),
        always("lora_r", "/lora/r", d.lora.r, positive_integer),
        always("lora_alpha", "/lora/alpha", grid_number(d.lora.alpha), positive_number),
        always("lora_dropout", "/lora/dropout", grid_number(d.lora.dropout),
               numbers(0, /*least_excluded=*/false, 1, "a number in [0, 1)")),
        always("target_modules", "/lora/target_modules", d.lora.target_modules,
               {AxisType::kModules, "a non-empty list of module names", 0, false, HUGE_VAL,
                std::nullopt}),
        always("epochs", "/epochs", d.epochs, positive_integer),
        always("cutoff_len", "", kTallrecCutoffLen, integers(16, "an integer of at least 16")),
        always("batch_size", "/batch_size", d.batch_size, positive_integer),
        always("micro_batch_size", "/micro_batch_size", d.micro_batch_size, positive_integer),
        // -1: as many as the epochs make
        always("max_steps", "/max_steps", d.max_steps,
               integers(1, "-1 (from the epochs) or a positive integer", /*also=*/-1)),
        optional("dtype", "/dtype", enum_names<Dtype>()),
        optional("gradient_checkpointing", "/gradient_checkpointing", {false, true}),
        optional("group_by_length", "/group_by_length", {false, true}),
        optional("data_order", "/data_order", enum_names<DataOrder>()),
        optional("recipe", "/recipe", enum_names<Recipe>()),
        // TALLRec's oddities, each with its clean way (docs/dev/data.md, docs/dev/training.md):
        // the prompt's literal "# noqa: E501" and the loss on the whole prompt are data options
        // (the worker tokenizes with them); the double softmax is the trainer's scoring.
        optional("template", "", {"tallrec", "clean"}),
        optional("train_on_inputs", "", {true, false}),
        optional("scoring", "/scoring", enum_names<Scoring>())};
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

void apply_recipe(RunSpec& s) {
  switch (s.recipe) {
    case Recipe::kFinetuneRec:  // the struct's defaults are finetune_rec.py's
      return;
    case Recipe::kInstruct7b:
      s.micro_batch_size = 64;
      s.group_by_length = true;
      s.gradient_checkpointing = true;
      return;
  }
}

namespace {

// One row per field of a spec: where it sits in the JSON ("lora" group, "r" key), how to write
// it and how to read it. The field list, the JSON and the parser all follow this table.
struct SpecField {
  std::string group;  // "" at the top level, else the object the key sits in
  std::string key;
  bool required = false;
  std::function<nlohmann::json(const RunSpec&)> dump;
  // Sets the field from `value`; InputError (naming origin and the field) when it does not fit.
  std::function<void(const nlohmann::json& value, RunSpec&, const std::string& origin)> load;

  std::string path() const { return group.empty() ? key : group + "." + key; }
};

template <class T>
nlohmann::json dump_value(const T& value) {
  if constexpr (std::is_enum_v<T>)
    return name_of(value);
  else
    return value;
}

template <class T>
void load_value(const nlohmann::json& value, T& out, const std::string& origin,
                const std::string& path) {
  if constexpr (std::is_enum_v<T>) {
    if (value.is_string()) {
      out = parse_enum<T>(value.get<std::string>(), origin);
      return;
    }
  } else if (get_exact(value, out)) {
    return;
  }
  throw InputError(origin + ": field \"" + path + "\" has the wrong type or range");
}

template <class T>
SpecField field(const char* key, T RunSpec::*member, bool required = false) {
  return {"", key, required, [member](const RunSpec& s) { return dump_value(s.*member); },
          [member, key](const nlohmann::json& v, RunSpec& s, const std::string& origin) {
            load_value(v, s.*member, origin, key);
          }};
}

template <class G, class T>
SpecField field(const char* group, const char* key, G RunSpec::*in, T G::*member) {
  const std::string path = std::string(group) + "." + key;
  return {group, key, false, [in, member](const RunSpec& s) { return dump_value(s.*in.*member); },
          [in, member, path](const nlohmann::json& v, RunSpec& s, const std::string& origin) {
            load_value(v, s.*in.*member, origin, path);
          }};
}

const std::vector<SpecField>& spec_fields() {
  static const std::vector<SpecField> fields = {
      field("recipe", &RunSpec::recipe),  // first: the others override its defaults
      field("eval_at_end", &RunSpec::eval_at_end),
      field("base_model", &RunSpec::base_model, /*required=*/true),
      field("init_adapter", &RunSpec::init_adapter),
      field("train_tokens", &RunSpec::train_tokens, /*required=*/true),
      field("valid_tokens", &RunSpec::valid_tokens, /*required=*/true),
      field("test_tokens", &RunSpec::test_tokens),
      field("seed", &RunSpec::seed),
      field("data_order", &RunSpec::data_order),
      field("data_seed", &RunSpec::data_seed),
      field("lora", "r", &RunSpec::lora, &LoraConfig::r),
      field("lora", "alpha", &RunSpec::lora, &LoraConfig::alpha),
      field("lora", "dropout", &RunSpec::lora, &LoraConfig::dropout),
      field("lora", "target_modules", &RunSpec::lora, &LoraConfig::target_modules),
      field("optim", "lr", &RunSpec::optim, &AdamWConfig::lr),
      field("optim", "weight_decay", &RunSpec::optim, &AdamWConfig::weight_decay),
      field("optim", "beta1", &RunSpec::optim, &AdamWConfig::beta1),
      field("optim", "beta2", &RunSpec::optim, &AdamWConfig::beta2),
      field("optim", "eps", &RunSpec::optim, &AdamWConfig::eps),
      field("warmup_steps", &RunSpec::warmup_steps),
      field("max_grad_norm", &RunSpec::max_grad_norm),
      field("batch_size", &RunSpec::batch_size),
      field("micro_batch_size", &RunSpec::micro_batch_size),
      field("epochs", &RunSpec::epochs),
      field("max_steps", &RunSpec::max_steps),
      field("eval_every", &RunSpec::eval_every),
      field("early_stopping_patience", &RunSpec::early_stopping_patience),
      field("eval_batch_size", &RunSpec::eval_batch_size),
      field("group_by_length", &RunSpec::group_by_length),
      field("gradient_checkpointing", &RunSpec::gradient_checkpointing),
      field("dtype", &RunSpec::dtype),
      field("loss_scale_init", &RunSpec::loss_scale_init),
      field("scoring", &RunSpec::scoring),
      field("loss_normalization", &RunSpec::loss_normalization),
      field("threads", &RunSpec::threads),
      field("device", &RunSpec::device),
      field("world_size", &RunSpec::world_size),
      field("memory_limit_gib", &RunSpec::memory_limit_gib)};
  return fields;
}

// The value of `f` in `spec`, or nullptr when it is absent or null.
const nlohmann::json* find_value(const nlohmann::json& spec, const SpecField& f) {
  const nlohmann::json* scope = &spec;
  if (!f.group.empty()) {
    auto group = spec.find(f.group);
    if (group == spec.end()) return nullptr;
    scope = &*group;
  }
  auto it = scope->find(f.key);
  return it == scope->end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

const std::vector<std::string>& run_spec_fields() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const SpecField& f : spec_fields()) {
      const std::string& top = f.group.empty() ? f.key : f.group;
      if (std::find(out.begin(), out.end(), top) == out.end()) out.push_back(top);
    }
    return out;
  }();
  return names;
}

nlohmann::json run_spec_json(const RunSpec& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const SpecField& f : spec_fields()) {
    if (f.group.empty())
      j[f.key] = f.dump(s);
    else
      j[f.group][f.key] = f.dump(s);
  }
  return j;
}

nlohmann::json resolved_trainer_settings(const nlohmann::json& grid_run) {
  if (spec_method(grid_run, "grid run") != Method::kLlm) {
    nlohmann::json out = baseline_spec_json(baseline_spec_of_run(grid_run, "-"));
    out.erase("inputs");  // the worker's file
    return out;
  }
  RunSpec s;
  if (grid_run.contains("recipe") && grid_run["recipe"].is_string()) {
    s.recipe = parse_enum<Recipe>(grid_run["recipe"].get<std::string>(), "grid run");
    apply_recipe(s);
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
  // Every key the table knows, at the top level and in each group (which must be an object).
  std::map<std::string, std::vector<std::string>> known;
  for (const SpecField& f : spec_fields()) known[f.group].push_back(f.key);
  auto is_known = [&](const std::string& group, const std::string& key) {
    const auto& keys = known[group];
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (auto& [key, value] : j.items()) {
    if (key.empty() || !known.count(key)) {
      if (!is_known("", key)) throw InputError(origin + ": unknown field \"" + key + "\"");
      continue;
    }
    if (!value.is_object()) throw InputError(origin + ": field \"" + key + "\" must be an object");
    for (auto& [inner, ignored] : value.items())
      if (!is_known(key, inner))
        throw InputError(origin + ": unknown field \"" + key + "." + inner + "\"");
  }
  RunSpec s;
  const auto& fields = spec_fields();  // fields[0] is the recipe, whose defaults come first
  if (const nlohmann::json* v = find_value(j, fields[0])) fields[0].load(*v, s, origin);
  apply_recipe(s);
  for (size_t i = 1; i < fields.size(); ++i) {
    if (const nlohmann::json* v = find_value(j, fields[i]))
      fields[i].load(*v, s, origin);
    else if (fields[i].required)
      throw InputError(origin + ": missing field \"" + fields[i].path() + "\"");
  }

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
