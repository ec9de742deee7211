#include "jobs/train/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "jobs/train/llama.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/weight_files.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

std::string peft_key(int64_t layer, const std::string& module, char which) {
  return "base_model.model.model.layers." + std::to_string(layer) +
         (is_attention_projection(module) ? ".self_attn." : ".mlp.") + module + ".lora_" + which +
         ".weight";
}

}  // namespace

LoraAdapters::LoraAdapters(const LlamaConfig& model, LoraConfig config, uint64_t seed,
                           at::ScalarType dtype)
    : config_(std::move(config)) {
  if (config_.r <= 0) throw InputError("lora r must be positive");
  if (config_.dropout < 0 || config_.dropout >= 1)
    throw InputError("lora dropout must be in [0, 1)");
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    for (const auto& module : config_.target_modules) {
      auto [out, in] = projection_shape(model, module);
      // kaiming_uniform_(a=sqrt(5)) on [r, in]: bound = sqrt(6 / ((1 + 5) * in)) = 1 / sqrt(in).
      const double bound = 1.0 / std::sqrt(double(in));
      at::Tensor a = at::empty({config_.r, in}, at::kFloat).uniform_(-bound, bound, gen).to(dtype);
      at::Tensor b = at::zeros({out, config_.r}, at::TensorOptions().dtype(dtype));
      pairs_[{l, module}] = {a, b};
    }
  }
}

const LoraPair* LoraAdapters::find(int64_t layer, const std::string& module) const {
  auto it = pairs_.find({layer, module});
  return it == pairs_.end() ? nullptr : &it->second;
}

LoraPair* LoraAdapters::find(int64_t layer, const std::string& module) {
  auto it = pairs_.find({layer, module});
  return it == pairs_.end() ? nullptr : &it->second;
}

void LoraAdapters::to(const at::Device& device) {
  for (auto& [key, pair] : pairs_) {
    pair.a = pair.a.to(device);
    pair.b = pair.b.to(device);
  }
}

std::vector<at::Tensor> LoraAdapters::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& [key, pair] : pairs_) {
    out.push_back(pair.a);
    out.push_back(pair.b);
  }
  return out;
}

std::vector<std::string> LoraAdapters::parameter_names() const {
  std::vector<std::string> out;
  for (const auto& [key, pair] : pairs_) {
    out.push_back(peft_key(key.first, key.second, 'A'));
    out.push_back(peft_key(key.first, key.second, 'B'));
  }
  return out;
}

void LoraAdapters::save_peft(const fs::path& dir, const std::string& base_model_path) const {
  fs::create_directories(dir);
  std::vector<TensorToWrite> tensors;
  auto names = parameter_names();
  auto params = parameters();
  for (size_t i = 0; i < params.size(); ++i)
    tensors.push_back({names[i], params[i].detach().to(at::kFloat).contiguous()});
  write_safetensors(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  nlohmann::ordered_json cfg = {{"base_model_name_or_path", base_model_path},
                                {"bias", "none"},
                                {"fan_in_fan_out", false},
                                {"inference_mode", true},
                                {"init_lora_weights", true},
                                {"lora_alpha", config_.alpha},
                                {"lora_dropout", config_.dropout},
                                {"modules_to_save", nullptr},
                                {"peft_type", "LORA"},
                                {"r", config_.r},
                                {"target_modules", config_.target_modules},
                                {"task_type", "CAUSAL_LM"},
                                {"use_dora", false},
                                {"use_rslora", false}};
  write_file_atomically(dir / "adapter_config.json", cfg.dump(2) + "\n");
}

LoraAdapters LoraAdapters::load_peft(const fs::path& dir, const LlamaConfig& model,
                                     at::ScalarType dtype) {
  const fs::path cfg_path = dir / "adapter_config.json";
  LoraAdapters out;
  try {
    auto j = parse_json_from_outside(read_file(cfg_path), cfg_path.string());
    if (j.value("peft_type", "LORA") != "LORA")
      throw InputError(cfg_path.string() + ": peft_type is not LORA");
    if (j.value("bias", "none") != "none")
      throw InputError(cfg_path.string() + ": LoRA bias is not supported");
    if (j.value("use_dora", false) || j.value("use_rslora", false)) {
      throw InputError(cfg_path.string() + ": DoRA and rsLoRA adapters are not supported");
    }
    if (j.value("fan_in_fan_out", false))
      throw InputError(cfg_path.string() + ": fan_in_fan_out is not supported");
    // Numbers converted exactly: a float r (or 1e300) is refused, never cast.
    auto number = [&](const char* key, auto& field, bool required) {
      if (!j.contains(key) || j[key].is_null()) {
        if (required) throw InputError(cfg_path.string() + ": missing field \"" + key + "\"");
        return;
      }
      if (!get_exact(j[key], field))
        throw InputError(cfg_path.string() + ": field \"" + key + "\" has the wrong type or range");
    };
    number("r", out.config_.r, true);
    number("lora_alpha", out.config_.alpha, true);
    out.config_.dropout = 0.0;
    number("lora_dropout", out.config_.dropout, false);
    auto targets = j.at("target_modules");
    out.config_.target_modules = targets.is_string()
                                     ? std::vector<std::string>{targets.get<std::string>()}
                                     : targets.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(cfg_path.string() + ": malformed adapter config: " + e.what());
  }
  // PEFT writes adapter_model.safetensors; PEFT 0.3 (TALLRec's alpaca-lora-7B) wrote a torch.save
  // adapter_model.bin with the same key names.
  fs::path weights = dir / "adapter_model.safetensors";
  if (!fs::exists(weights) && fs::exists(dir / "adapter_model.bin"))
    weights = dir / "adapter_model.bin";
  if (!fs::exists(weights))
    throw InputError(dir.string() + ": no adapter_model.safetensors or adapter_model.bin");
  const std::unique_ptr<TensorSource> file = open_tensor_file(weights);
  if (file->names().empty())
    throw InputError(weights.string() +
                     ": holds no tensors (an empty saved adapter, as PEFT's known 443-byte "
                     "adapter_model.bin): save the adapter again");
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    for (const auto& module : out.config_.target_modules) {
      auto [o, in] = projection_shape(model, module);
      const std::string a = peft_key(l, module, 'A');
      if (!file->contains(a))
        throw InputError(weights.string() + ": no tensor \"" + a +
                         "\", which adapter_config.json's r " + std::to_string(out.config_.r) +
                         " on " + module + " needs (an adapter for another model?)");
      out.pairs_[{l, module}] = {file->load(a, dtype, {out.config_.r, in}),
                                 file->load(peft_key(l, module, 'B'), dtype, {o, out.config_.r})};
    }
  }
  return out;
}

LoraAdapters LoraAdapters::load_peft_into(const fs::path& dir, const LlamaConfig& model,
                                          const LoraConfig& want, at::ScalarType dtype) {
  LoraAdapters out = load_peft(dir, model, dtype);
  const LoraConfig& have = out.config_;
  const std::string where = (dir / "adapter_config.json").string() + ": ";
  auto fmt = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
    return s;
  };
  if (have.r != want.r)
    throw InputError(where + "r is " + std::to_string(have.r) + ", the run's lora.r is " +
                     std::to_string(want.r) +
                     " (set lora.r to the adapter's, or start from another adapter)");
  if (have.alpha != want.alpha)
    throw InputError(where + "lora_alpha is " + fmt(have.alpha) + ", the run's lora.alpha is " +
                     fmt(want.alpha));
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (sorted(have.target_modules) != sorted(want.target_modules)) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& m : v) s += (s.empty() ? "" : ",") + m;
      return s;
    };
    throw InputError(where + "target_modules are " + list(have.target_modules) +
                     ", the run's lora.target_modules are " + list(want.target_modules));
  }
  out.config_ = want;
  return out;
}

void merge_lora_into(LlamaModel& model, const LoraAdapters& adapters) {
  at::NoGradGuard no_grad;
  for (int64_t l = 0; l < model.config.num_hidden_layers; ++l) {
    for (const auto& module : adapters.config().target_modules) {
      const LoraPair* p = adapters.find(l, module);
      if (!p) continue;
      at::Tensor& w = model.weight(l, module);
      at::Tensor delta =
          at::matmul(p->b.to(at::kFloat), p->a.to(at::kFloat)) * adapters.config().scaling();
      w = (w.to(at::kFloat) + delta).to(w.scalar_type());
    }
  }
}

}  // namespace tallrec
