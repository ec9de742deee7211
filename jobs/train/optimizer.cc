#include "jobs/train/optimizer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

namespace tallrec {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWConfig config)
    : params_(std::move(params)), config_(config) {
  for (const auto& p : params_) {
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).to(at::kFloat));
    exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).to(at::kFloat));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++step_;
  const double bias1 = 1 - std::pow(config_.beta1, double(step_));
  const double bias2_sqrt = std::sqrt(1 - std::pow(config_.beta2, double(step_)));
  const double step_size = lr / bias1;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad().to(at::kFloat);
    at::Tensor master = p.to(at::kFloat);  // a no-op for fp32 parameters
    master.mul_(1 - lr * config_.weight_decay);
    exp_avg_[i].lerp_(g, 1 - config_.beta1);
    exp_avg_sq_[i].mul_(config_.beta2).addcmul_(g, g, 1 - config_.beta2);
    at::Tensor denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(config_.eps);
    master.addcdiv_(exp_avg_[i], denom, -step_size);
    if (master.data_ptr() != p.data_ptr()) p.copy_(master);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

double linear_warmup_multiplier(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return double(step) / double(std::max<int64_t>(1, warmup_steps));
  return std::max(
      0.0, double(total_steps - step) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().to(at::kFloat).norm(2));
  if (norms.empty()) return 0.0;
  at::Tensor total = at::stack(norms).norm(2);
  at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().mul_(coef.to(p.grad().scalar_type()));
  return total.item<double>();
}

}  // namespace tallrec
