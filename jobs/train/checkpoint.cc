#include "jobs/train/checkpoint.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/sha256.h"
#include "jobs/train/safetensors.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

const char* kFiles[] = {"adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors",
                        "state.json"};

nlohmann::json state_to_json(const TrainerState& s, const std::string& data_order,
                             uint64_t data_seed) {
  return {{"data_order", data_order},
          {"data_seed", data_seed},
          {"global_step", s.global_step},
          {"epoch", s.epoch},
          {"micro_batch", s.micro_batch},
          {"best_auc", s.best_auc},
          {"best_step", s.best_step},
          {"evals_without_improvement", s.evals_without_improvement},
          {"history", s.history},
          {"scheduler_steps", s.scheduler_steps},
          {"loss_scale", s.loss_scale},
          {"clean_steps", s.clean_steps},
          {"micro_batch_size", s.cursor_micro_batch_size}};
}

// Rank 0's CPU state keeps the name it had before data-parallel resume, so older checkpoints
// still load.
std::string rng_key(const char* base, size_t rank) {
  return rank == 0 ? std::string(base) : std::string(base) + ".rank-" + std::to_string(rank);
}

}  // namespace

std::pair<fs::path, std::string> write_checkpoint(const fs::path& checkpoints_dir,
                                                  const LoraAdapters& adapters,
                                                  const std::string& base_model,
                                                  const CheckpointData& data) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(data.state.global_step));
  const fs::path final_dir = checkpoints_dir / name;
  StagedDirectory staged(final_dir);
  adapters.save_peft(staged.path(), base_model);
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < data.exp_avg.size(); ++i) {
    tensors.push_back({"exp_avg." + std::to_string(i), data.exp_avg[i]});
    tensors.push_back({"exp_avg_sq." + std::to_string(i), data.exp_avg_sq[i]});
  }
  for (size_t r = 0; r < data.rng.size(); ++r) {
    tensors.push_back({rng_key("rng_state", r), data.rng[r].cpu});
    if (data.rng[r].device.defined())
      tensors.push_back({rng_key("cuda_rng_state", r), data.rng[r].device});
  }
  write_safetensors(staged.path() / "optimizer.safetensors", tensors);
  write_file_atomically(
      staged.path() / "state.json",
      state_to_json(data.state, data.data_order, data.data_seed.value_or(0)).dump(2) + "\n");
  nlohmann::ordered_json manifest = nlohmann::ordered_json::object();
  for (const char* f : kFiles) manifest[f] = sha256_file(staged.path() / f);
  const std::string manifest_text = manifest.dump(2) + "\n";
  write_file_atomically(staged.path() / "manifest.json", manifest_text);
  staged.commit();
  return {final_dir, sha256_hex(manifest_text)};
}

std::optional<fs::path> newest_valid_checkpoint(const fs::path& checkpoints_dir) {
  if (!fs::exists(checkpoints_dir)) return std::nullopt;
  std::set<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(checkpoints_dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step-", 0) == 0 && n.find(".tmp-") == std::string::npos)
      dirs.insert(e.path());
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    try {
      auto manifest = parse_json_from_outside(read_file(*it / "manifest.json"),
                                              (*it / "manifest.json").string());
      bool ok = true;
      for (const char* f : kFiles)
        ok = ok && manifest.at(f).get<std::string>() == sha256_file(*it / f);
      if (ok) return *it;
    } catch (const std::exception&) {
      // unreadable or incomplete: try an older one
    }
  }
  return std::nullopt;
}

CheckpointData read_checkpoint(const fs::path& dir, size_t parameter_count) {
  CheckpointData d;
  const std::string origin = (dir / "state.json").string();
  const nlohmann::json j = parse_json_from_outside(read_file(dir / "state.json"), origin);
  if (!j.is_object()) throw InputError(origin + ": checkpoint state is not a JSON object");
  auto field = [&](const char* key, auto& out) {
    if (!j.contains(key)) throw InputError(origin + ": missing field \"" + std::string(key) + "\"");
    if (!get_exact(j[key], out))
      throw InputError(origin + ": field \"" + std::string(key) + "\" has the wrong type or range");
  };
  field("global_step", d.state.global_step);
  field("epoch", d.state.epoch);
  field("micro_batch", d.state.micro_batch);
  field("best_auc", d.state.best_auc);
  field("best_step", d.state.best_step);
  field("evals_without_improvement", d.state.evals_without_improvement);
  field("scheduler_steps", d.state.scheduler_steps);
  field("loss_scale", d.state.loss_scale);
  field("clean_steps", d.state.clean_steps);
  if (j.contains("micro_batch_size")) field("micro_batch_size", d.state.cursor_micro_batch_size);
  if (!j.contains("history") || !j["history"].is_array())
    throw InputError(origin + ": field \"history\" is not a list");
  for (const auto& eval :
       j["history"]) {  // re-written by every later checkpoint: only what we wrote
    int64_t step = 0;
    double val_auc = 0, val_loss = 0;
    if (!eval.is_object() || !eval.contains("step") || !get_exact(eval["step"], step) ||
        !eval.contains("val_auc") || !get_exact(eval["val_auc"], val_auc) ||
        !eval.contains("val_loss") || !get_exact(eval["val_loss"], val_loss))
      throw InputError(origin +
                       ": field \"history\" holds an entry that is not {step, val_auc, val_loss}");
    d.state.history.push_back({{"step", step}, {"val_auc", val_auc}, {"val_loss", val_loss}});
  }
  // Checkpoints from before the order was recorded used the per-seed permutation; its seed was
  // the run's, which is not known here, so only the kind is checked for them.
  d.data_order = "seeded";
  if (j.contains("data_order")) field("data_order", d.data_order);
  if (j.contains("data_seed")) field("data_seed", d.data_seed.emplace());
  try {
    SafetensorsFile opt(dir / "optimizer.safetensors");
    for (size_t i = 0; i < parameter_count; ++i) {
      d.exp_avg.push_back(opt.load("exp_avg." + std::to_string(i), at::kFloat));
      d.exp_avg_sq.push_back(opt.load("exp_avg_sq." + std::to_string(i), at::kFloat));
    }
    for (size_t r = 0; opt.contains(rng_key("rng_state", r)); ++r) {
      RngState s;
      s.cpu = opt.load(rng_key("rng_state", r), at::kByte);
      if (opt.contains(rng_key("cuda_rng_state", r)))
        s.device = opt.load(rng_key("cuda_rng_state", r), at::kByte);
      d.rng.push_back(std::move(s));
    }
  } catch (const c10::Error& e) {  // from libtorch: the message without its C++ stack trace
    throw InputError((dir / "optimizer.safetensors").string() +
                     ": damaged: " + e.what_without_backtrace());
  }
  return d;
}

void prune_checkpoints(const fs::path& checkpoints_dir, const std::vector<fs::path>& keep) {
  std::set<fs::path> kept(keep.begin(), keep.end());
  for (const auto& e : fs::directory_iterator(checkpoints_dir)) {
    if (e.is_directory() && !kept.count(e.path())) {
      std::error_code ec;
      fs::remove_all(e.path(), ec);
    }
  }
}

}  // namespace tallrec
