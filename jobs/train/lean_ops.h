// A decoder layer's element-wise pieces as autograd functions that save only what their backward
// needs. Each computes the forward exactly as the plain ATen expression in its comment (the
// same kernels in the same order), and its backward as autograd would through that expression;
// what differs is what stays alive between forward and backward.
//
// Saved bytes per token (E: the activations' element size; H hidden, I intermediate; fp32 E = 4):
//   rms_norm      x [H] in its own dtype + 1/rms [1] fp32          (autograd: an fp32 copy of x
//                                                                   when x is bf16/fp16)
//   swiglu        gate [I] + up [I]                                 (autograd: + silu(gate) [I])
//   lora_update   x [in] (shared by every adapter reading the same  (autograd: the dropout noise
//                 input) + a 1-byte keep mask [in] + x A^T [r]       [in] and dropout(x) [in],
//                                                                    both E bytes, per adapter)
// SmolLM2-135M (H 576, I 1536) in fp32 with LoRA on q and v, per layer: plain autograd kept
// 41.6 KB a token, these and attention.h's keep 26.6 KB (norms 4.6, LoRA 3.5, attention 6.2,
// MLP 12.3); tests/train/lean_ops_test.cc measures it.
#pragma once

#include <ATen/core/Tensor.h>

namespace tallrec {

// HF LlamaRMSNorm: weight * (xf * rsqrt(mean(xf^2) + eps)).to(x.dtype), xf = x in fp32 (or
// wider). `weight` is frozen (no gradient is computed for it).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// silu(gate) * up; silu is recomputed in backward.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// PEFT's LoRA term: (dropout(x) A^T) B^T * scaling, in x's dtype (A [r, in] and B [out, r] are
// fp32 master weights, cast as autograd would). Dropout with probability `dropout` when
// `training`, drawn as at::dropout draws it on x's device (CPU: a bernoulli_ over x's shape,
// so a run's masks are the ones the plain expression gave); only the keep mask is saved.
at::Tensor lora_update(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                       double dropout, bool training, double scaling);

}  // namespace tallrec
