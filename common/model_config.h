// LlamaConfig: the fields of HF's config.json that define a LLaMA model's shapes and numerics.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tallrec {

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  std::string torch_dtype =
      "float32";  // "float32" | "float16" | "bfloat16": dtype of the stored weights

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t kv_dim() const { return head_dim() * num_key_value_heads; }
};

// Reads config.json (HF layout). Throws InputError naming the file and the field that is
// missing, mistyped or inconsistent (e.g. heads not dividing hidden_size).
LlamaConfig read_llama_config(const std::filesystem::path& path);
std::string llama_config_json(const LlamaConfig& config);
void validate_llama_config(const LlamaConfig& config, const std::string& origin);

// "tiny": a small GQA model over LLaMA's real 32000-piece vocabulary, for tests and the CPU demo.
// "7b": LLaMA-7B's exact shapes (random weights), for memory and speed work on a GPU.
LlamaConfig llama_preset(const std::string& name);

}  // namespace tallrec
