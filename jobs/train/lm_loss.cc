#include "jobs/train/lm_loss.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "common/error.h"

namespace tallrec {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Half precision is upcast to fp32 for the softmax, as HF does; fp32 and fp64 stay as they are.
at::ScalarType accumulation_dtype(const at::Tensor& lm_head) {
  return at::promote_types(lm_head.scalar_type(), at::kFloat);
}

// The loss sum over all rows; with `grad`, also d(sum)/d(hidden) written into it ([N, H], fp32 or
// wider).
at::Tensor chunked_loss(const at::Tensor& hidden, const at::Tensor& lm_head,
                        const at::Tensor& targets, int64_t chunk, at::Tensor* grad) {
  const auto acc = accumulation_dtype(lm_head);
  at::Tensor sum = at::zeros({}, hidden.options().dtype(acc));
  const int64_t n = hidden.size(0);
  // float16 cannot hold the small softmax entries (about 1/V) unscaled, and HF multiplies the
  // loss scale in before its cast; so the gradient's product runs in fp32 there. bfloat16 has
  // fp32's range: its product stays in bfloat16, as HF's.
  const at::Tensor grad_weight =
      grad && lm_head.scalar_type() == at::kHalf ? lm_head.to(at::kFloat) : lm_head;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    const at::Tensor target = targets.narrow(0, start, rows).unsqueeze(1);  // [rows, 1]
    // log_softmax is one fused, row-wise kernel (logsumexp would make two more [rows, V] tensors).
    at::Tensor log_probs =
        at::log_softmax(at::linear(hidden.narrow(0, start, rows), lm_head).to(acc), -1);
    sum -= log_probs.gather(1, target).sum();
    if (!grad) continue;
    at::Tensor d = log_probs.exp_();  // softmax, in place
    d.scatter_add_(1, target, at::full({rows, 1}, -1.0, d.options()));
    grad->narrow(0, start, rows).copy_(at::mm(d.to(grad_weight.scalar_type()), grad_weight));
  }
  return sum;
}

struct LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor hidden, at::Tensor lm_head,
                            at::Tensor targets, int64_t chunk) {
    at::Tensor grad =
        at::empty(hidden.sizes(), hidden.options().dtype(accumulation_dtype(lm_head)));
    at::Tensor sum = chunked_loss(hidden, lm_head, targets, chunk, &grad);
    ctx->save_for_backward({grad});  // freed after backward, unlike saved_data
    ctx->saved_data["dtype"] = static_cast<int64_t>(hidden.scalar_type());
    return sum;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor grad = ctx->get_saved_variables()[0];
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {(grad * grad_outputs[0]).to(dtype), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& lm_head,
                                    const at::Tensor& targets, int64_t chunk_rows) {
  const int64_t chunk =
      chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, (int64_t(1) << 26) / lm_head.size(0));
  if (lm_head.requires_grad())
    throw Error("linear_cross_entropy_sum: lm_head is frozen here; it must not require grad");
  if (at::GradMode::is_enabled() && hidden.requires_grad())
    return LinearCrossEntropy::apply(hidden, lm_head, targets, chunk);
  return chunked_loss(hidden, lm_head, targets, chunk, nullptr);
}

}  // namespace tallrec
