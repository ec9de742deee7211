#include "jobs/train/lean_ops.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace tallrec {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::ScalarType at_least_fp32(at::ScalarType t) { return at::promote_types(t, at::kFloat); }

struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor weight, double eps) {
    at::Tensor xf = x.to(at_least_fp32(x.scalar_type()));
    at::Tensor inv_rms = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);  // [.., 1]
    ctx->save_for_backward({x, weight, inv_rms});
    return weight * (xf * inv_rms).to(x.scalar_type());
  }

  // Autograd's chain through the forward's expression, term by term: d(normed) = (g w) in fp32;
  // through xf * r: d(xf) = d(normed) r and d(r) = sum(d(normed) xf); through rsqrt, mean and
  // pow: d(xf) += (-0.5 d(r) r^3 / H) 2 xf.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &inv_rms = saved[2];
    at::Tensor xf = x.to(at_least_fp32(x.scalar_type()));
    at::Tensor d_normed = (grad_outputs[0] * weight).to(xf.scalar_type());
    at::Tensor d_inv_rms = (d_normed * xf).sum(-1, /*keepdim=*/true);
    at::Tensor d_mean = -0.5 * d_inv_rms * inv_rms.pow(3);
    at::Tensor d_square = d_mean.expand(xf.sizes()) / double(xf.size(-1));
    at::Tensor dx = d_normed * inv_rms + d_square * (2.0 * xf);
    return {dx.to(x.scalar_type()), at::Tensor(), at::Tensor()};
  }
};

struct SwiGlu : public torch::autograd::Function<SwiGlu> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor gate, at::Tensor up) {
    ctx->save_for_backward({gate, up});
    return at::silu(gate) * up;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1], &g = grad_outputs[0];
    at::Tensor d_gate, d_up;
    if (ctx->needs_input_grad(0)) d_gate = at::silu_backward(g * up, gate);
    if (ctx->needs_input_grad(1)) d_up = g * at::silu(gate);
    return {d_gate, d_up};
  }
};

// t * keep / (1 - p) as at::dropout computes it on t's device: the CPU multiplies by a noise
// tensor in t's dtype (keep / (1 - p) rounded to it); CUDA's native_dropout (and its backward)
// scales in fp32 or wider and rounds once.
at::Tensor apply_keep(const at::Tensor& t, const at::Tensor& keep, double dropout) {
  if (t.is_cuda()) {
    const auto acc = at_least_fp32(t.scalar_type());
    return (t.to(acc) * keep * (1.0 / (1.0 - dropout))).to(t.scalar_type());
  }
  return t * keep.to(t.scalar_type()).div_(1 - dropout);
}

// The keep mask as at::dropout draws it: CPU fills a tensor like x with bernoulli(1 - p); CUDA
// runs the fused native_dropout, whose second result is the mask.
at::Tensor draw_keep_mask(const at::Tensor& x, double dropout) {
  if (x.is_cuda()) return std::get<1>(at::native_dropout(x.detach(), dropout, true));
  return at::empty_like(x).bernoulli_(1 - dropout).to(at::kBool);
}

struct LoraUpdate : public torch::autograd::Function<LoraUpdate> {
  // No `keep` mask: no dropout.
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor a, at::Tensor b,
                            const std::optional<at::Tensor>& keep, double dropout, double scaling) {
    const auto dt = x.scalar_type();
    at::Tensor dropped = keep ? apply_keep(x, *keep, dropout) : x;
    at::Tensor xa = at::linear(dropped, a.to(dt));  // [.., r]
    ctx->save_for_backward({x, a, b, keep.value_or(at::Tensor()), xa});
    ctx->saved_data["dropout"] = dropout;
    ctx->saved_data["scaling"] = scaling;
    return at::linear(xa, b.to(dt)) * scaling;  // [.., out]
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &a = saved[1], &b = saved[2], &keep = saved[3], &xa = saved[4];
    const double dropout = ctx->saved_data["dropout"].toDouble(),
                 scaling = ctx->saved_data["scaling"].toDouble();
    const auto dt = x.scalar_type();
    const int64_t r = a.size(0), in = a.size(1), out = b.size(0);
    at::Tensor g = (grad_outputs[0] * scaling).reshape({-1, out});  // [N, out]
    at::Tensor da, db, dx;
    if (ctx->needs_input_grad(2)) db = g.t().mm(xa.reshape({-1, r})).to(b.scalar_type());
    at::Tensor d_xa = g.mm(b.to(dt));  // [N, r]
    if (ctx->needs_input_grad(1)) {
      at::Tensor dropped = keep.defined() ? apply_keep(x, keep, dropout) : x;
      da = d_xa.t().mm(dropped.reshape({-1, in})).to(a.scalar_type());
    }
    if (ctx->needs_input_grad(0)) {
      dx = d_xa.mm(a.to(dt)).view(x.sizes());
      if (keep.defined()) dx = apply_keep(dx, keep, dropout);
    }
    return {dx, da, db, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNorm::apply(x, weight, eps);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) { return SwiGlu::apply(gate, up); }

at::Tensor lora_update(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                       double dropout, bool training, double scaling) {
  std::optional<at::Tensor> keep;
  if (training && dropout > 0) keep = draw_keep_mask(x, dropout);
  return LoraUpdate::apply(x, a, b, keep, dropout, scaling);
}

}  // namespace tallrec
