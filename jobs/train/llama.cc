// The forward pass of llama.h, top to bottom; loading and saving weights is llama_weights.cc.
#include "jobs/train/llama.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "common/error.h"
#include "jobs/train/attention.h"
#include "jobs/train/lean_ops.h"
#include "jobs/train/lora.h"

namespace tallrec {
namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x W^T (+ b, undefined when the projection has none) (+ the LoRA term).
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t layer,
                   const char* module, const ForwardOptions& o) {
  at::Tensor y = at::linear(x, w, b);
  if (o.lora) {
    if (const LoraPair* p = o.lora->find(layer, module)) {
      const LoraConfig& c = o.lora->config();
      y = y + lora_update(x, p->a, p->b, c.dropout, o.training, c.scaling());
    }
  }
  return y;
}

}  // namespace

at::Tensor rope_inv_freq(const LlamaConfig& c, const at::TensorOptions& on) {
  const int64_t D = c.head_dim();
  at::Tensor inv_freq =
      1.0 /
      at::pow(c.rope_theta, at::arange(0, D, 2, on.dtype(at::kLong)).to(at::kFloat) / double(D));
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) return inv_freq / s.factor;
  if (s.type != RopeScaling::Type::kLlama3) return inv_freq;
  // transformers' _compute_llama3_parameters: long wavelengths divided by the factor, short ones
  // kept, the band between them interpolated.
  const double old_len = double(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor,
               high_wavelen = old_len / s.high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
  at::Tensor smooth =
      (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  at::Tensor medium =
      at::logical_not(wavelen < high_wavelen) & at::logical_not(wavelen > low_wavelen);
  return at::where(medium, smoothed, scaled);
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  at::Tensor pos = attention_mask.to(at::kLong).cumsum(-1) - 1;
  return pos.masked_fill(attention_mask.eq(0), 1).clamp_min(0);
}

at::Tensor llama_forward(const LlamaModel& model, const at::Tensor& input_ids,
                         const at::Tensor& attention_mask, const at::Tensor& position_ids,
                         const ForwardOptions& o) {
  return at::linear(llama_hidden(model, input_ids, attention_mask, position_ids, o),
                    model.lm_head);  // [B, T, V]
}

at::Tensor llama_hidden(const LlamaModel& model, const at::Tensor& input_ids,
                        const at::Tensor& attention_mask, const at::Tensor& position_ids,
                        const ForwardOptions& o) {
  const LlamaConfig& c = model.config;
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const auto dtype = model.embed_tokens.scalar_type();

  // Mistral's sliding window changes nothing while every key is within it; beyond, refuse.
  if (c.sliding_window > 0 && T > c.sliding_window)
    throw InputError("a sequence of " + std::to_string(T) + " tokens is longer than the model's " +
                     "sliding_window of " + std::to_string(c.sliding_window) +
                     " (sliding-window attention is not implemented; lower cutoff_len)");
  at::Tensor h = at::embedding(model.embed_tokens, input_ids);  // [B, T, H]

  // Rotary tables, computed in fp32 as HF does: angles = pos * inv_freq, emb = [angles, angles].
  const auto on = at::TensorOptions().device(input_ids.device());
  at::Tensor pos = position_ids.defined()
                       ? position_ids
                       : at::arange(T, on.dtype(at::kLong)).unsqueeze(0).expand({B, T});
  at::Tensor inv_freq = rope_inv_freq(c, on);
  at::Tensor angles = pos.to(at::kFloat).unsqueeze(-1) * inv_freq;  // [B, T, D/2]
  at::Tensor emb = at::cat({angles, angles}, -1);                   // [B, T, D]
  at::Tensor cos = emb.cos().to(dtype).unsqueeze(1),
             sin = emb.sin().to(dtype).unsqueeze(1);  // [B, 1, T, D]

  // Causal + padding mask; rows that see no key get HF eager's uniform attention (attention.h).
  const AttentionMask mask =
      make_attention_mask(attention_mask, B, T, c.num_attention_heads / c.num_key_value_heads,
                          dtype, input_ids.device());

  const LayerContext ctx{cos, sin, mask};
  if (o.gradient_checkpointing && at::GradMode::is_enabled()) {
    // The checkpointed layers need an input that requires grad to stay in the graph (HF's
    // enable_input_require_grads does the same for the embeddings' output).
    h.requires_grad_(true);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) h = checkpointed_layer(model, l, h, ctx, o);
  } else {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) h = llama_layer(model, l, h, ctx, o);
  }
  return rms_norm(h, model.final_norm, c.rms_norm_eps);  // [B, T, H]
}

at::Tensor llama_layer(const LlamaModel& model, int64_t l, at::Tensor h, const LayerContext& ctx,
                       const ForwardOptions& o) {
  const LlamaConfig& c = model.config;
  const int64_t B = h.size(0), T = h.size(1), Nh = c.num_attention_heads,
                Nkv = c.num_key_value_heads, D = c.head_dim();
  const at::Tensor &cos = ctx.cos, &sin = ctx.sin;
  const AttentionMask& mask = ctx.mask;
  {
    const LlamaLayer& L = model.layers[size_t(l)];
    at::Tensor a = rms_norm(h, L.input_norm, c.rms_norm_eps);
    at::Tensor q = project(a, L.q_proj, L.q_bias, l, "q_proj", o)
                       .view({B, T, Nh, D})
                       .transpose(1, 2);  // [B, Nh, T, D]
    at::Tensor k = project(a, L.k_proj, L.k_bias, l, "k_proj", o)
                       .view({B, T, Nkv, D})
                       .transpose(1, 2);  // [B, Nkv, T, D]
    at::Tensor v =
        project(a, L.v_proj, L.v_bias, l, "v_proj", o).view({B, T, Nkv, D}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    at::Tensor attn = attention(q, k, v, mask);  // [B, Nh, T, D]
    attn = attn.transpose(1, 2).reshape({B, T, Nh * D});
    h = h + project(attn, L.o_proj, L.o_bias, l, "o_proj", o);
    at::Tensor m = rms_norm(h, L.post_norm, c.rms_norm_eps);
    at::Tensor gate = project(m, L.gate_proj, L.gate_bias, l, "gate_proj", o);
    at::Tensor up = project(m, L.up_proj, L.up_bias, l, "up_proj", o);
    h = h + project(swiglu(gate, up), L.down_proj, L.down_bias, l, "down_proj", o);
  }
  return h;
}

std::vector<int64_t> greedy_generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                                     int64_t steps, int64_t stop_id) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> tokens = prompt, generated;
  for (int64_t s = 0; s < steps; ++s) {
    if (int64_t(tokens.size()) > model.config.max_position_embeddings) break;
    at::Tensor ids = at::tensor(tokens, at::kLong).unsqueeze(0).to(model.embed_tokens.device());
    at::Tensor logits = llama_forward(model, ids, at::Tensor(), at::Tensor());
    int64_t next = logits[0][int64_t(tokens.size()) - 1].argmax().item<int64_t>();
    if (next == stop_id) break;
    generated.push_back(next);
    tokens.push_back(next);
  }
  return generated;
}

}  // namespace tallrec
