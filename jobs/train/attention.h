// Attention as HF's eager LlamaAttention computes it, forward and backward, without its
// [B, Nh, T, T] probability tensor and without repeating k and v to every query head (shapes:
// B batch, Nh query heads, Nkv key/value heads, G = Nh / Nkv, T tokens, D head dim).
//
// Grouped-query attention: the G query heads that share a key/value head are laid one after
// another as G*T query rows of that head, [B, Nkv, G*T, D], against k, v [B, Nkv, T, D], and the
// mask repeats its T rows G times. Every query row is computed as before (attention is row by
// row); only the sums over rows of dk and dv run in another order. Saved for backward per token:
// q and the output (Nh*D each), k and v (Nkv*D each), fp32 log-sum-exp (Nh): for SmolLM2 in fp32
// 6.2 KB where repeating k and v kept 9.3 KB. The mask [B, 1, G*T, T] is built once per forward.
//
// HF eager adds finfo.min to masked scores and softmaxes in fp32. A query row with no visible
// key (every left-padding position: causal + padding masks leave it nothing) then has every
// score rounded to finfo.min, so it attends uniformly to all T keys, and autograd back-
// propagates the softmax Jacobian at that uniform distribution. With `train_on_inputs` the last
// padding position predicts BOS and carries loss, so these rows reach the gradient of every
// TALLRec batch. at::scaled_dot_product_attention's fused CPU kernel (torch 2.9.1) gets their
// forward right but their backward T times too large, and CUDA's kernels treat such rows in
// their own ways. So those rows never reach SDPA: they are opened for it (their result is
// thrown away) and computed here in closed form, exactly as HF eager's forward and backward:
//   out_i = mean_j v_j
//   dq_i  = scale/T sum_j (g_i . (v_j - vbar)) k_j,   dk_j += scale/T (g_i . (v_j - vbar)) q_i,
//   dv_j += g_i / T
// with [B, Nkv, D, D] of extra memory per layer. Every other row is SDPA's, whose gradient
// equals HF eager's there.
#pragma once

#include <ATen/core/Tensor.h>

namespace tallrec {

struct AttentionMask {
  at::Tensor additive;    // [B, 1, G*T, T]: 0 where query i sees key j, the dtype's lowest value
                          // elsewhere; rows with no visible key are all 0 (opened for SDPA)
  at::Tensor unattended;  // [B, 1, G*T, 1] bool: the rows with no visible key; undefined if none
};

// Causal mask plus, when `attention_mask` [B, T] (1 real, 0 padding) is defined, padding keys,
// for `groups` (G) query heads per key/value head.
AttentionMask make_attention_mask(const at::Tensor& attention_mask, int64_t batch, int64_t tokens,
                                  int64_t groups, at::ScalarType dtype, const at::Device& device);

// q [B, Nh, T, D], k and v [B, Nkv, T, D] with Nh = G * Nkv, the mask made for that G
// -> [B, Nh, T, D].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask);

}  // namespace tallrec
