#include "cli/preflight.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/memory_estimate.h"
#include "common/model_config.h"
#include "common/model_folder.h"
#include "common/run_spec.h"
#include "common/safetensors_header.h"
#include "common/weight_format.h"
#include "jobs/data/interaction_record.h"
#include "jobs/data/prompt_record.h"
#include "jobs/data/tokenize_records.h"
#include "jobs/data/tokenizer.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / kGiB);
  return buf;
}

struct ModelInfo {
  LlamaConfig config;
};

// config.json and the weight files' formats (headers only). Throws InputError.
ModelInfo check_model(const fs::path& dir, std::string& detail) {
  if (!fs::is_directory(dir))
    throw InputError(dir.string() + ": not a model folder (config.json + weights)");
  // The trainer's own reader: what it would refuse (rope_scaling, an odd head_dim, a float
  // where a size belongs ...) is refused here, before anything is queued.
  const LlamaConfig c = read_llama_config(dir / "config.json");
  ModelInfo m;
  m.config = c;
  const std::vector<fs::path> files = find_model_weight_files(dir).files;
  WeightFormat first = WeightFormat::kUnknown;
  for (const auto& f : files) {
    const WeightFormat kind = sniff_weight_file(f);
    if (f == files.front()) first = kind;
    if (kind != WeightFormat::kSafetensors && kind != WeightFormat::kTorchZip)
      require_weight_format(f,
                            WeightFormat::kSafetensors);  // names LFS pointers and legacy pickles
    if (kind == WeightFormat::kSafetensors) read_safetensors_header(f);
  }
  detail = std::to_string(c.num_hidden_layers) + " layers, hidden " +
           std::to_string(c.hidden_size) + ", vocabulary " + std::to_string(c.vocab_size) + ", " +
           std::to_string(files.size()) + " weight file(s), " + weight_format_name(first);
  return m;
}

// The adapter against the run's LoRA settings (resolved_trainer_settings' "lora") and the model
// (headers only).
void check_adapter(const fs::path& dir, const LlamaConfig& model, const json& lora,
                   std::string& detail) {
  const fs::path cfg_path = dir / "adapter_config.json";
  const json cfg = parse_json_from_outside(read_file(cfg_path), cfg_path.string());
  const int64_t r = cfg.value("r", int64_t(0)), want_r = lora.at("r").get<int64_t>();
  const double alpha = cfg.value("lora_alpha", 0.0), want_alpha = lora.at("alpha").get<double>();
  std::vector<std::string> targets =
      cfg.contains("target_modules") && cfg["target_modules"].is_array()
          ? cfg["target_modules"].get<std::vector<std::string>>()
          : std::vector<std::string>{};
  auto want_targets = lora.at("target_modules").get<std::vector<std::string>>();
  std::sort(targets.begin(), targets.end());
  std::sort(want_targets.begin(), want_targets.end());
  if (r != want_r)
    throw InputError(cfg_path.string() + ": r is " + std::to_string(r) + ", the grid's lora_r is " +
                     std::to_string(want_r));
  if (alpha != want_alpha)
    throw InputError(cfg_path.string() + ": lora_alpha differs from the grid's lora_alpha");
  if (targets != want_targets)
    throw InputError(cfg_path.string() + ": target_modules differ from the grid's target_modules");
  fs::path weights = dir / "adapter_model.safetensors";
  if (!fs::exists(weights)) weights = dir / "adapter_model.bin";
  if (!fs::exists(weights))
    throw InputError(dir.string() + ": no adapter_model.safetensors or adapter_model.bin");
  const WeightFormat kind = sniff_weight_file(weights);
  if (kind != WeightFormat::kSafetensors && kind != WeightFormat::kTorchZip)
    require_weight_format(weights, WeightFormat::kSafetensors);
  if (kind == WeightFormat::kSafetensors) {
    const SafetensorsHeader header = read_safetensors_header(weights);
    const size_t tensors = header.entries.size();
    for (const auto& [name, info] : header.entries) {
      for (const auto& module : targets) {
        if (name.find("." + module + ".lora_") == std::string::npos) continue;
        auto [out, in] = projection_shape(model, module);
        const auto& shape = info.shape;
        const bool is_a = name.find(".lora_A.") != std::string::npos;
        if (shape != (is_a ? std::vector<int64_t>{r, in} : std::vector<int64_t>{out, r}))
          throw InputError(weights.string() + ": tensor \"" + name +
                           "\" does not fit the model (another model's adapter?)");
      }
    }
    if (tensors == 0)
      throw InputError(weights.string() + ": holds no tensors (an empty saved adapter)");
    if (tensors != size_t(2 * model.num_hidden_layers) * targets.size())
      throw InputError(weights.string() + ": " + std::to_string(tensors) +
                       " tensors, the model's " + std::to_string(model.num_hidden_layers) +
                       " layers x " + std::to_string(targets.size()) + " targets need " +
                       std::to_string(2 * model.num_hidden_layers * int64_t(targets.size())));
  } else if (fs::file_size(weights) < 1024) {
    throw InputError(weights.string() + ": " + std::to_string(fs::file_size(weights)) +
                     " bytes: an empty saved adapter");
  }
  detail = "r " + std::to_string(r) + " on " + std::to_string(targets.size()) + " module(s), " +
           weight_format_name(kind);
}

}  // namespace

double parse_memory_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw InputError("--gpu-memory \"" + text + "\": expected a size such as 24GiB");
  }
  const std::string unit = text.substr(used);
  static const std::map<std::string, double> units = {
      {"", 1}, {"B", 1}, {"KiB", 1024.0}, {"MiB", 1 << 20}, {"GiB", kGiB}, {"GB", 1e9}};
  auto it = units.find(unit);
  if (it == units.end() || v <= 0)
    throw InputError("--gpu-memory \"" + text + "\": expected a size such as 24GiB");
  return v * it->second;
}

std::vector<PreflightLine> preflight(const Grid& grid, const PreflightOptions& o) {
  std::vector<PreflightLine> out;
  auto attempt = [&](const std::string& what, const std::string& subject,
                     const std::function<std::string()>& check) {
    try {
      out.push_back({what, subject, true, check()});
    } catch (const InputError& e) {
      out.push_back({what, subject, false, e.what()});
    } catch (const std::exception& e) {
      out.push_back({what, subject, false, e.what()});
    }
  };
  // A baseline run (coordinator/grid.h's methods) trains no LLM: its base model, tokenizer and
  // adapter are not checked, nor is its memory estimated as an LLM's (the estimate knows only
  // the LLM); its datasets are. A grid of baselines alone needs none of the LLM's paths.
  auto is_llm = [](const GridRun& run) {
    return spec_method(run.spec, "grid run") == Method::kLlm;
  };
  const bool any_llm = std::any_of(grid.runs.begin(), grid.runs.end(), is_llm);
  const bool any_baseline = !std::all_of(grid.runs.begin(), grid.runs.end(), is_llm);
  // Each prompt file's labels, read once, when a baseline's interaction files are checked too.
  std::map<std::string, std::vector<int>> labels_of;
  // Paths first: each missing one is a finding of its own, and nothing is checked through it.
  std::set<std::string> missing;
  json document = grid.document;
  for_each_grid_path(document, [&](const std::string& field, json& value) {
    const std::string path = value.get<std::string>();
    if (!any_llm && (field == "base_model" || field == "tokenizer" || field == "init_adapter"))
      return;
    std::error_code ec;
    if (path.empty() || fs::exists(path, ec) || !missing.insert(path).second) return;
    const std::string what = field == "base_model"     ? "model"
                             : field == "init_adapter" ? "adapter"
                             : field == "tokenizer"    ? "tokenizer"
                                                       : "dataset";
    out.push_back({what, path, false,
                   field + ": " + path + " does not exist" +
                       (o.missing_hint.empty() ? "" : " " + o.missing_hint)});
  });
  std::map<std::string, ModelInfo> models;
  std::set<std::string> seen;
  auto present = [&](const std::string& path) { return !missing.count(path); };
  for (const auto& run : grid.runs) {
    const json& spec = run.spec;
    const bool llm = is_llm(run);
    // What the trainer will run with: RunSpec's defaults, the recipe, the grid's axes (one place).
    const json trainer = resolved_trainer_settings(spec);
    const std::string base = spec.value("base_model", "");
    if (llm && present(base) && seen.insert("model " + base).second)
      attempt("model", base, [&] {
        std::string detail;
        models[base] = check_model(base, detail);
        return detail;
      });
    const std::string tok = spec.value("tokenizer", "");
    TokenizeOptions tokenize_options;
    tokenize_options.special_ids = spec.value("special_ids", tokenize_options.special_ids);
    if (llm && present(tok) &&
        seen.insert("tokenizer " + tok + " " + base + " " + tokenize_options.special_ids).second)
      attempt("tokenizer", tok, [&] {
        Tokenizer t(tok);
        const AnswerIds answers = lookup_answer_ids(t);
        if (models.count(base) && t.vocab_size() > models[base].config.vocab_size)
          throw InputError(tok + ": " + std::to_string(t.vocab_size()) +
                           " pieces, more than the model's vocabulary of " +
                           std::to_string(models[base].config.vocab_size) + " (" + base + ")");
        const SpecialIds ids = special_token_ids(t, tokenize_options);
        auto special = [&](int32_t id) {
          return id < 0 ? std::string("none") : std::to_string(id) + " " + t.piece(id);
        };
        return std::to_string(t.vocab_size()) +
               " pieces, answer ids yes=" + std::to_string(answers.yes) +
               " no=" + std::to_string(answers.no) + "; BOS " + special(ids.bos) + ", EOS " +
               special(ids.eos) + ", pad " + special(ids.pad) + " (special_ids \"" +
               tokenize_options.special_ids + "\")";
      });
    if (llm && spec.contains("init_adapter")) {
      const std::string adapter = spec["init_adapter"];
      const std::string key = "adapter " + adapter + " " + base + " " + trainer["lora"].dump();
      if (present(adapter) && models.count(base) && seen.insert(key).second)
        attempt("adapter", adapter, [&] {
          std::string detail;
          check_adapter(adapter, models[base].config, trainer["lora"], detail);
          return detail;
        });
    }
    if (o.datasets) {
      std::vector<std::string> files = {spec.value("train", ""), spec.value("valid", "")};
      const json tests = spec.value("tests", json::object());  // named: items() must not outlive it
      for (auto& [name, path] : tests.items()) files.push_back(path.get<std::string>());
      for (const auto& f : files)
        if (present(f) && seen.insert("dataset " + f).second)
          attempt("dataset", f, [&] {
            const auto records = read_prompt_records(f);
            if (any_baseline) {
              std::vector<int>& labels = labels_of[f];  // for the interaction check below
              for (const auto& r : records) labels.push_back(answer_label(r));
            }
            size_t bad = 0, first_bad = 0;
            for (size_t i = 0; i < records.size(); ++i)
              if (answer_label(records[i]) < 0 && bad++ == 0) first_bad = i;
            if (bad)
              throw InputError(
                  f + ": " + std::to_string(bad) +
                  " record(s) whose output is not exactly \"Yes.\" or \"No.\" (first: record " +
                  std::to_string(first_bad) + ")");
            return std::to_string(records.size()) + " records, labels Yes./No.";
          });
      // A baseline trains on the interactions behind the prompts: the file beside each, record
      // for record (jobs/data/interaction_record.h).
      for (const auto& f : files)
        if (!llm && present(f) && seen.insert("interactions " + f).second)
          attempt("dataset", interactions_path_for(f).string(), [&] {
            if (!labels_of.count(f)) {  // the dataset check could not read it: say why again
              std::vector<int>& labels = labels_of[f];
              for (const auto& r : read_prompt_records(f)) labels.push_back(answer_label(r));
            }
            const auto interactions = read_interactions_behind(f, labels_of[f]);
            return std::to_string(interactions.size()) + " interaction records, one per prompt";
          });
    }
    if (o.memory && llm && models.count(base)) {
      const bool ckpt = trainer["gradient_checkpointing"];
      const std::string dtype =
          spec.contains("dtype") ? trainer["dtype"].get<std::string>() : name_of(kGpuDefaultDtype);
      const int64_t micro = trainer["micro_batch_size"],
                    cutoff = spec.value("cutoff_len", kTallrecCutoffLen);  // a data option
      const int64_t r = trainer["lora"]["r"];
      const auto targets = trainer["lora"]["target_modules"].get<std::vector<std::string>>();
      char subject[160];
      std::snprintf(subject, sizeof subject, "%s, %s, micro-batch %lld x cutoff %lld, %s",
                    fs::path(base).filename().c_str(), dtype.c_str(), static_cast<long long>(micro),
                    static_cast<long long>(cutoff),
                    ckpt ? "gradient checkpointing" : "no checkpointing");
      // A run's memory_limit_gib caps what it may use (the worker's --memory-limit-gib may cap it
      // further, which the pre-flight cannot see): the smaller of the card and the cap is the
      // budget.
      double budget = o.gpu_memory_bytes;
      std::string budget_name = gib(budget);
      if (spec.contains("memory_limit_gib") && spec["memory_limit_gib"].is_number() &&
          spec["memory_limit_gib"].get<double>() * kGiB < budget) {
        budget = spec["memory_limit_gib"].get<double>() * kGiB;
        budget_name = gib(budget) + " (the grid's memory_limit_gib)";
      }
      if (seen.insert(std::string("memory ") + subject + std::to_string(r) + json(targets).dump() +
                      budget_name)
              .second) {
        const MemoryEstimate e = estimate_gpu_memory(
            models[base].config, bytes_per_value(parse_enum<Dtype>(dtype, "dtype")), r, targets,
            micro, cutoff, ckpt);
        const bool fits = e.total() <= budget;
        out.push_back({"memory", subject, fits,
                       "about " + gib(e.total()) + " (weights " + gib(e.weights) +
                           ", LoRA + AdamW " + gib(e.lora) + ", activations " + gib(e.activations) +
                           ", loss " + gib(e.loss) + ", CUDA " + gib(e.overhead) + ")" +
                           (fits ? " fits " : " does not fit ") + budget_name +
                           "; an estimate, not a measurement"});
      }
    }
  }
  return out;
}

std::string format_preflight(const std::vector<PreflightLine>& lines) {
  std::string out;
  for (const auto& l : lines) {
    char head[64];
    std::snprintf(head, sizeof head, "%-4s %-9s ", l.ok ? "ok" : "FAIL", l.what.c_str());
    out += head + l.subject + "\n       " + printable_utf8(l.detail) + "\n";
  }
  return out;
}

bool preflight_ok(const std::vector<PreflightLine>& lines) {
  return std::all_of(lines.begin(), lines.end(), [](const PreflightLine& l) { return l.ok; });
}

}  // namespace tallrec
