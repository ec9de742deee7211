#include "common/model_config.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {

void validate_llama_config(const LlamaConfig& c, const std::string& origin) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(origin + ": " + what);
  };
  need(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0,
       "sizes must be positive");
  // Far beyond any LLaMA (7B: 32 layers, hidden 4096, vocabulary 32000), small enough that no
  // size computed from them overflows: a crafted config is refused, not an allocation failure.
  need(c.num_hidden_layers <= 1024 && c.hidden_size <= (1 << 17) &&
           c.intermediate_size <= (1 << 19) && c.vocab_size <= (1 << 22) &&
           c.num_attention_heads <= 4096 && c.max_position_embeddings <= (1 << 22),
       "sizes out of range (num_hidden_layers <= 1024, hidden_size <= 131072, intermediate_size <= "
       "524288, "
       "vocab_size <= 4194304, num_attention_heads <= 4096, max_position_embeddings <= 4194304)");
  need(c.num_attention_heads > 0 &&
           (c.explicit_head_dim > 0 || c.hidden_size % c.num_attention_heads == 0),
       "num_attention_heads must divide hidden_size (or head_dim be given)");
  need(c.explicit_head_dim >= 0 && c.explicit_head_dim <= 4096, "head_dim out of range");
  need(c.sliding_window >= 0, "sliding_window must not be negative");
  if (c.rope_scaling.type != RopeScaling::Type::kNone)
    need(c.rope_scaling.factor >= 1 && c.rope_scaling.factor <= 1024,
         "rope_scaling factor must be in [1, 1024]");
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3)
    need(c.rope_scaling.low_freq_factor > 0 &&
             c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor &&
             c.rope_scaling.original_max_position_embeddings > 0,
         "rope_scaling (llama3) needs 0 < low_freq_factor < high_freq_factor and a positive "
         "original_max_position_embeddings");
  need(c.head_dim() % 2 == 0, "head_dim must be even (rotary embeddings)");
  need(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
       "num_key_value_heads must divide num_attention_heads");
  need(c.rms_norm_eps > 0 && c.rope_theta > 0, "rms_norm_eps and rope_theta must be positive");
  need(c.torch_dtype == "float32" || c.torch_dtype == "float16" || c.torch_dtype == "bfloat16",
       "torch_dtype must be float32, float16 or bfloat16, not \"" + c.torch_dtype + "\"");
}

LlamaConfig read_llama_config(const std::filesystem::path& path) {
  const std::string origin = path.string();
  const nlohmann::json j = parse_json_from_outside(read_file(path), origin);
  if (!j.is_object()) throw InputError(origin + ": a model config is a JSON object");
  LlamaConfig c;
  auto get = [&](const char* key, auto& field, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) throw InputError(origin + ": missing field \"" + std::string(key) + "\"");
      return;
    }
    if (!get_exact(*it, field))
      throw InputError(origin + ": field \"" + std::string(key) + "\" has the wrong type or range");
  };
  const std::string arch = j.contains("architectures") && j["architectures"].is_array() &&
                                   !j["architectures"].empty() && j["architectures"][0].is_string()
                               ? j["architectures"][0].get<std::string>()
                               : "LlamaForCausalLM";
  if (arch == "LlamaForCausalLM")
    c.architecture = Architecture::kLlama;
  else if (arch == "MistralForCausalLM")
    c.architecture = Architecture::kMistral;
  else if (arch == "Qwen2ForCausalLM")
    c.architecture = Architecture::kQwen2;
  else
    throw InputError(
        origin + ": architecture \"" + printable_utf8(arch) +
        "\" is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
  get("vocab_size", c.vocab_size, true);
  get("hidden_size", c.hidden_size, true);
  get("intermediate_size", c.intermediate_size, true);
  get("num_hidden_layers", c.num_hidden_layers, true);
  get("num_attention_heads", c.num_attention_heads, true);
  c.num_key_value_heads = c.num_attention_heads;  // HF's default when absent
  get("num_key_value_heads", c.num_key_value_heads, false);
  get("max_position_embeddings", c.max_position_embeddings, false);
  get("rms_norm_eps", c.rms_norm_eps, false);
  get("rope_theta", c.rope_theta, false);
  get("tie_word_embeddings", c.tie_word_embeddings, false);
  get("torch_dtype", c.torch_dtype, false);
  get("head_dim", c.explicit_head_dim, false);
  if (c.architecture == Architecture::kQwen2) {
    c.qkv_bias = true;  // Qwen2's attention: biases on q, k and v, none on o
    bool sliding = false;
    get("use_sliding_window", sliding, false);
    if (sliding) throw InputError(origin + ": use_sliding_window (Qwen2) is not supported");
  } else {
    bool attention_bias = false;
    get("attention_bias", attention_bias, false);
    c.qkv_bias = c.o_bias = attention_bias;
    get("mlp_bias", c.mlp_bias, false);
  }
  if (c.architecture == Architecture::kMistral) get("sliding_window", c.sliding_window, false);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const nlohmann::json& s = j["rope_scaling"];
    const std::string where = origin + ": rope_scaling";
    if (!s.is_object()) throw InputError(where + " must be an object or null");
    const nlohmann::json kind =
        s.contains("rope_type") ? s["rope_type"] : s.value("type", nlohmann::json());
    const std::string type = kind.is_string() ? kind.get<std::string>() : "";
    auto number = [&](const char* key, auto& field) {
      if (!s.contains(key) || !get_exact(s[key], field))
        throw InputError(where + " (" + type + "): \"" + key + "\" must be a number");
    };
    if (type == "default") {
    } else if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      number("factor", c.rope_scaling.factor);
    } else if (type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::kLlama3;
      number("factor", c.rope_scaling.factor);
      number("low_freq_factor", c.rope_scaling.low_freq_factor);
      number("high_freq_factor", c.rope_scaling.high_freq_factor);
      number("original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings);
    } else {
      throw InputError(where + ": type \"" + printable_utf8(type) +
                       "\" is not supported (default, linear, llama3)");
    }
  }
  validate_llama_config(c, origin);
  return c;
}

std::string llama_config_json(const LlamaConfig& c) {
  const char* arch = c.architecture == Architecture::kQwen2     ? "Qwen2ForCausalLM"
                     : c.architecture == Architecture::kMistral ? "MistralForCausalLM"
                                                                : "LlamaForCausalLM";
  const char* type = c.architecture == Architecture::kQwen2     ? "qwen2"
                     : c.architecture == Architecture::kMistral ? "mistral"
                                                                : "llama";
  nlohmann::ordered_json j = {{"architectures", {arch}},
                              {"model_type", type},
                              {"vocab_size", c.vocab_size},
                              {"hidden_size", c.hidden_size},
                              {"intermediate_size", c.intermediate_size},
                              {"num_hidden_layers", c.num_hidden_layers},
                              {"num_attention_heads", c.num_attention_heads},
                              {"num_key_value_heads", c.num_key_value_heads},
                              {"max_position_embeddings", c.max_position_embeddings},
                              {"rms_norm_eps", c.rms_norm_eps},
                              {"rope_theta", c.rope_theta},
                              {"tie_word_embeddings", c.tie_word_embeddings},
                              {"hidden_act", "silu"},
                              {"attention_bias", c.o_bias},
                              {"mlp_bias", c.mlp_bias},
                              {"initializer_range", 0.02},
                              {"bos_token_id", 1},
                              {"eos_token_id", 2},
                              {"pad_token_id", 0},
                              {"torch_dtype", c.torch_dtype}};
  if (c.explicit_head_dim > 0) j["head_dim"] = c.explicit_head_dim;
  if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
  if (c.rope_scaling.type == RopeScaling::Type::kLinear)
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3)
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  return j.dump(2) + "\n";
}

LlamaConfig llama_preset(const std::string& name) {
  LlamaConfig c;
  if (name == "7b") {
    c.torch_dtype = "bfloat16";
    return c;  // the defaults are LLaMA-7B's
  }
  if (name == "tiny") {
    c.hidden_size = 64;
    c.intermediate_size = 176;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 1024;
    c.rms_norm_eps = 1e-6;
    return c;
  }
  throw InputError("unknown preset \"" + name + "\" (expected tiny or 7b)");
}

bool is_attention_projection(const std::string& module) {
  return module == "q_proj" || module == "k_proj" || module == "v_proj" || module == "o_proj";
}

std::pair<int64_t, int64_t> projection_shape(const LlamaConfig& c, const std::string& module) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  if (module == "q_proj") return {c.q_dim(), H};
  if (module == "k_proj" || module == "v_proj") return {c.kv_dim(), H};
  if (module == "o_proj") return {H, c.q_dim()};
  if (module == "gate_proj" || module == "up_proj") return {I, H};
  if (module == "down_proj") return {H, I};
  throw InputError("unknown LoRA target module \"" + module +
                   "\" (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj)");
}

}  // namespace tallrec
