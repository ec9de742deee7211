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
  need(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
       "num_attention_heads must divide hidden_size");
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
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    throw InputError(origin + ": rope_scaling is not supported");
  }
  validate_llama_config(c, origin);
  return c;
}

std::string llama_config_json(const LlamaConfig& c) {
  nlohmann::ordered_json j = {{"architectures", {"LlamaForCausalLM"}},
                              {"model_type", "llama"},
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
                              {"attention_bias", false},
                              {"mlp_bias", false},
                              {"initializer_range", 0.02},
                              {"bos_token_id", 1},
                              {"eos_token_id", 2},
                              {"pad_token_id", 0},
                              {"torch_dtype", c.torch_dtype}};
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

}  // namespace tallrec
