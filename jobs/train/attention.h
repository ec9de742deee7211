// Attention as HF's eager LlamaAttention computes it, forward and backward, without its
// [B, Nh, T, T] probability tensor (shapes: B batch, Nh heads, T tokens, D head dim).
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
// with [B, Nh, D, D] of extra memory per layer. Every other row is SDPA's, whose gradient
// equals HF eager's there.
#pragma once

#include <ATen/core/Tensor.h>

namespace tallrec {

struct AttentionMask {
  at::Tensor additive;    // [B, 1, T, T]: 0 where query i sees key j, the dtype's lowest value
                          // elsewhere; rows with no visible key are all 0 (opened for SDPA)
  at::Tensor unattended;  // [B, 1, T, 1] bool: the rows with no visible key; undefined if none
};

// Causal mask plus, when `attention_mask` [B, T] (1 real, 0 padding) is defined, padding keys.
AttentionMask make_attention_mask(const at::Tensor& attention_mask, int64_t batch, int64_t tokens,
                                  at::ScalarType dtype, const at::Device& device);

// q, k, v [B, Nh, T, D] (k and v already repeated to Nh heads) -> [B, Nh, T, D].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask);

}  // namespace tallrec
