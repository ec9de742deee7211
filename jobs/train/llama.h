// LLaMA as HF's LlamaForCausalLM computes it (and MistralForCausalLM, Qwen2ForCausalLM: the
// same but for biases and Mistral's sliding window), top to bottom (shapes: B batch, T tokens,
// H hidden, Nh query heads, Nkv key/value heads, D head dim, V vocabulary):
//   h = embed[input_ids]                                          [B, T, H]
//   per layer:  a = rmsnorm(h)                                    (variance in fp32)
//               q = a Wq^T -> [B, Nh, T, D];  k, v = a Wk^T, a Wv^T -> [B, Nkv, T, D]
//                   (+ biases where the config has them)
//               q, k = rope(q, k, positions)                      (rotate-half convention;
//                   rope_scaling linear or llama3 changes the frequencies)
//               h = h + softmax(q k^T / sqrt(D) + mask) v  Wo^T   (causal + padding mask;
//                   each k/v head serves Nh/Nkv query heads, never repeated: attention.h;
//                   rows that see no key attend uniformly, as HF eager: attention.h)
//               h = h + down(silu(gate(m)) * up(m)),  m = rmsnorm(h)
//   logits = rmsnorm(h) lm_head^T                                 [B, T, V]
// LoRA adapters, when given, add their term to the targeted projections. RMSNorm, SwiGLU and the
// LoRA term save only what their backward needs (lean_ops.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "jobs/train/attention.h"

namespace tallrec {

class LoraAdapters;

// The biases are undefined unless the config has them (LlamaConfig: qkv_bias, o_bias, mlp_bias).
struct LlamaLayer {
  at::Tensor input_norm;            // [H]
  at::Tensor q_proj, q_bias;        // [Nh*D, H], [Nh*D]
  at::Tensor k_proj, k_bias;        // [Nkv*D, H], [Nkv*D]
  at::Tensor v_proj, v_bias;        // [Nkv*D, H], [Nkv*D]
  at::Tensor o_proj, o_bias;        // [H, Nh*D], [H]
  at::Tensor post_norm;             // [H]
  at::Tensor gate_proj, gate_bias;  // [I, H], [I]
  at::Tensor up_proj, up_bias;      // [I, H], [I]
  at::Tensor down_proj, down_bias;  // [H, I], [H]
};

struct LlamaModel {
  LlamaConfig config;
  at::Tensor embed_tokens;  // [V, H]
  std::vector<LlamaLayer> layers;
  at::Tensor final_norm;  // [H]
  at::Tensor lm_head;     // [V, H]; the same tensor as embed_tokens when tied

  // Moves every weight to `device` (a tied lm_head stays the embedding's tensor).
  void to(const at::Device& device);

  // The weight of a projection ("q_proj", ..., "down_proj") of a layer.
  const at::Tensor& weight(int64_t layer, const std::string& module) const;
  at::Tensor& weight(int64_t layer, const std::string& module) {
    return const_cast<at::Tensor&>(static_cast<const LlamaModel&>(*this).weight(layer, module));
  }
};

// Weights in and out (llama_weights.cc). HF layout: config.json + model.safetensors, or shards
// listed in model.safetensors.index.json.
// Weights are converted to `dtype` tensor by tensor while loading.
LlamaModel load_hf_model(const std::filesystem::path& dir, at::ScalarType dtype,
                         const at::Device& device = at::kCPU);
// A llama2.c checkpoint (legacy version-0 .bin). q/k rows are permuted from Meta's interleaved
// rotary layout to HF's rotate-half layout, as HF's convert_llama_weights_to_hf does.
LlamaModel load_llama2c_model(const std::filesystem::path& path);
// Meta's and llama.cpp's rotary layout (each head's pairs (x0,x1),(x2,x3).. interleaved) ->
// HF's rotate-half layout, for a [heads * D, cols] weight, as HF's convert_llama_weights_to_hf.
at::Tensor rotary_pairs_to_halves(const at::Tensor& w, int64_t heads);
// Fills a decoder layer from a source that names its tensors as llama.cpp does ("attn_q.weight",
// "ffn_down.weight", ...; the layer table of llama_weights.cc): `read(name, shape)` returns the
// tensor [out, in] (or [n]) in the layer's dtype. q and k come back to HF's rotary layout.
using GgufTensorReader =
    std::function<at::Tensor(const std::string& name, const std::vector<int64_t>& shape)>;
void read_gguf_layer(const LlamaConfig& config, LlamaLayer& layer, const GgufTensorReader& read);
// Random weights as HF initialises them (normal(0, 0.02), norms 1), seeded.
LlamaModel random_llama_model(const LlamaConfig& config, uint64_t seed, at::ScalarType dtype);
// Writes config.json + model.safetensors (in config.torch_dtype), atomically per file.
void save_hf_model(const LlamaModel& model, const std::filesystem::path& dir);
// Streams a random model straight to disk, one tensor at a time (for the 7b preset).
void write_random_hf_model(const LlamaConfig& config, uint64_t seed,
                           const std::filesystem::path& dir);

// Rotary inverse frequencies [D/2] (fp32), with the config's rope_scaling applied.
at::Tensor rope_inv_freq(const LlamaConfig& config, const at::TensorOptions& options);

// Position ids from a left-padded attention mask: cumsum(mask) - 1, 0 on padding (as HF's
// generate does). A sequence then scores the same padded or alone.
at::Tensor positions_from_mask(const at::Tensor& attention_mask);

struct ForwardOptions {
  const LoraAdapters* lora = nullptr;
  bool training = false;                // LoRA dropout on
  bool gradient_checkpointing = false;  // keep only layer inputs; recompute each layer in backward
};

// What every layer shares: rotary tables [B, 1, T, D] and the attention mask (attention.h).
struct LayerContext {
  at::Tensor cos, sin;
  AttentionMask mask;
};

// One decoder layer: h [B, T, H] -> h [B, T, H].
at::Tensor llama_layer(const LlamaModel& model, int64_t layer, at::Tensor h,
                       const LayerContext& ctx, const ForwardOptions& options);
// The same layer under gradient checkpointing (checkpointing.cc): activations are not kept;
// backward recomputes the layer with the RNG state of the forward pass (same dropout masks).
at::Tensor checkpointed_layer(const LlamaModel& model, int64_t layer, const at::Tensor& h,
                              const LayerContext& ctx, const ForwardOptions& options);

// input_ids [B, T] int64; attention_mask [B, T] (1 real, 0 padding) or undefined (no padding);
// position_ids [B, T] or undefined (0..T-1). Returns logits [B, T, V] in the model's dtype.
at::Tensor llama_forward(const LlamaModel& model, const at::Tensor& input_ids,
                         const at::Tensor& attention_mask, const at::Tensor& position_ids,
                         const ForwardOptions& options = {});

// The same pass without the vocabulary projection: the final normed hidden states [B, T, H].
// Training and scoring project only the rows they need (label positions, answer positions):
// the [B, T, V] logits are most of a small model's cost.
at::Tensor llama_hidden(const LlamaModel& model, const at::Tensor& input_ids,
                        const at::Tensor& attention_mask, const at::Tensor& position_ids,
                        const ForwardOptions& options = {});

// Greedy decoding from `prompt`, `steps` new tokens, stopping early at `stop_id` (if >= 0).
std::vector<int64_t> greedy_generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                                     int64_t steps, int64_t stop_id = -1);

}  // namespace tallrec
