#include "common/memory_estimate.h"

#include <algorithm>

namespace tallrec {

double layer_bytes_per_token(const LlamaConfig& m, int s, int64_t lora_r,
                             const std::vector<std::string>& targets) {
  const double H = double(m.hidden_size), I = double(m.intermediate_size), q = double(m.q_dim()),
               kv = double(m.kv_dim()), heads = double(m.num_attention_heads);
  // Two norms: their input and fp32 1/rms. Attention: q, k, v, the output, fp32 log-sum-exp.
  // The MLP: gate and up.
  double bytes = 2 * (s * H + 4) + s * (2 * q + 2 * kv) + 4 * heads + 2 * s * I;
  // LoRA: each distinct input an adapter reads (q/k/v share the normed input, gate/up theirs; the
  // norms' outputs are not kept otherwise), and per adapter a 1-byte dropout mask and x A^T.
  auto targeted = [&](std::initializer_list<const char*> modules) {
    for (const char* module : modules)
      if (std::find(targets.begin(), targets.end(), module) != targets.end()) return true;
    return false;
  };
  if (targeted({"q_proj", "k_proj", "v_proj"})) bytes += s * H;
  if (targeted({"o_proj"})) bytes += s * q;
  if (targeted({"gate_proj", "up_proj"})) bytes += s * H;
  if (targeted({"down_proj"})) bytes += s * I;
  for (const auto& t : targets) bytes += double(projection_shape(m, t).second) + s * double(lora_r);
  return bytes;
}

MemoryEstimate estimate_gpu_memory(const LlamaConfig& m, int s, int64_t lora_r,
                                   const std::vector<std::string>& targets, int64_t micro,
                                   int64_t tokens_per_sequence, bool checkpointing) {
  const double H = double(m.hidden_size), V = double(m.vocab_size), L = double(m.num_hidden_layers);
  MemoryEstimate e;
  // Norms and the seven projections (biases, at most a few vectors a layer, are left out).
  double per_layer = 2 * H;
  for (const char* p : kProjections) {
    const auto [out, in] = projection_shape(m, p);
    per_layer += double(out) * double(in);
  }
  e.weights = double(s) * (V * H * (m.tie_word_embeddings ? 1 : 2) + L * per_layer + H);
  double lora_params = 0;
  for (const auto& t : targets) {
    const auto [out, in] = projection_shape(m, t);
    lora_params += L * double(lora_r) * double(out + in);
  }
  e.lora = 16 * lora_params;  // fp32 weight, gradient, two AdamW moments
  const double tokens = double(micro) * double(tokens_per_sequence);
  e.activations = (checkpointing ? double(s) * H * L + layer_bytes_per_token(m, s, lora_r, targets)
                                 : layer_bytes_per_token(m, s, lora_r, targets) * L) *
                  tokens;
  e.loss = 256.0 * (1 << 20) +
           4 * H * tokens;  // one fp32 logits chunk, the fp32 gradient of the hidden rows
  e.overhead = kGiB;
  return e;
}

}  // namespace tallrec
