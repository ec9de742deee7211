// Cross-entropy through the vocabulary without holding every row's logits: the rows go through
// lm_head in chunks, and when a gradient is wanted it is computed in the same pass (softmax
// minus one-hot, times lm_head), so neither the [N, V] logits nor their gradient ever exist
// whole. For LLaMA-7B with all 16,384 positions of a 32 x 512 micro-batch labelled, that is
// several GiB of fp32 that HF holds and this does not; the extra memory is one chunk plus an
// fp32 [N, H] gradient. No extra matrix product either: forward and gradient share each
// chunk's logits.
//
// Numerics as HF's LlamaForCausalLM loss: logits in lm_head's dtype, upcast to fp32 for the
// log-softmax; the fp32 gradient of the logits is cast to lm_head's dtype for the product
// (bfloat16), or the product runs in fp32 (float16, whose range cannot hold the unscaled
// softmax). lm_head is frozen (LoRA never targets it); one that requires grad is an error.
#pragma once

#include <ATen/core/Tensor.h>

namespace tallrec {

// sum_i logsumexp(hidden_i lm_head^T) - (hidden_i lm_head^T)[targets_i], in fp32 (fp64 for
// fp64 weights), for
// hidden [N, H] (any float dtype), lm_head [V, H], targets [N] (int64, all valid ids).
// Differentiable with respect to `hidden` when grad mode is on and hidden requires grad.
// `chunk_rows` <= 0 picks rows so that one chunk's fp32 logits take about 256 MiB.
at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& lm_head,
                                    const at::Tensor& targets, int64_t chunk_rows = 0);

}  // namespace tallrec
