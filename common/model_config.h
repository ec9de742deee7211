// LlamaConfig: the fields of HF's config.json that define a LLaMA-family model's shapes and
// numerics: LlamaForCausalLM (LLaMA-1/2/3), MistralForCausalLM and Qwen2ForCausalLM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tallrec {

// Rotary position scaling (config.json's rope_scaling), as transformers' rope_utils computes it:
// kNone (or "default"), kLinear (inv_freq / factor), kLlama3 (Llama-3.1's frequency bands).
struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 } type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3 only
  int64_t original_max_position_embeddings = 8192;       // llama3 only
};

// The architectures read (config.json's "architectures"); they differ only in which
// projections carry biases and in Mistral's sliding window.
enum class Architecture { kLlama, kMistral, kQwen2 };

struct LlamaConfig {
  Architecture architecture = Architecture::kLlama;
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t explicit_head_dim = 0;  // config.json's head_dim; 0: hidden_size / num_attention_heads
  // Biases: q/k/v (Llama's attention_bias, always for Qwen2), o (Llama's attention_bias only),
  // gate/up/down (Llama's mlp_bias).
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  int64_t sliding_window = 0;  // Mistral: a key further back than this is not seen; 0: none
  std::string torch_dtype =
      "float32";  // "float32" | "float16" | "bfloat16": dtype of the stored weights

  int64_t head_dim() const {
    return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_attention_heads;
  }
  int64_t q_dim() const { return head_dim() * num_attention_heads; }
  int64_t kv_dim() const { return head_dim() * num_key_value_heads; }
};

// A decoder layer's projections as HF names them (and LoRA targets them), in layer order; the
// first four are attention's (self_attn.*), the rest the MLP's (mlp.*).
inline constexpr const char* kProjections[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                               "gate_proj", "up_proj", "down_proj"};
bool is_attention_projection(const std::string& module);
// [out, in] of a projection's weight for this config (q_proj [Nh*D, H], k/v_proj [Nkv*D, H],
// o_proj [H, Nh*D], gate/up_proj [I, H], down_proj [H, I]); InputError naming an unknown module.
// The trainer's tensor table, LoRA and the pre-flight all take shapes from here.
std::pair<int64_t, int64_t> projection_shape(const LlamaConfig& c, const std::string& module);

// Reads config.json (HF layout). Throws InputError naming the file and the field that is
// missing, mistyped or inconsistent (e.g. heads not dividing hidden_size).
LlamaConfig read_llama_config(const std::filesystem::path& path);
std::string llama_config_json(const LlamaConfig& config);
void validate_llama_config(const LlamaConfig& config, const std::string& origin);

// "tiny": a small GQA model over LLaMA's real 32000-piece vocabulary, for tests and the CPU demo.
// "7b": LLaMA-7B's exact shapes (random weights), for memory and speed work on a GPU.
LlamaConfig llama_preset(const std::string& name);

}  // namespace tallrec
