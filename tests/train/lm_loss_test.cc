// The chunked vocabulary loss against the plain one (at::linear + at::cross_entropy_loss, as
// before and as HF computes it): the same sum and the same gradient, for any chunking.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "jobs/train/lm_loss.h"

namespace tallrec {
namespace {

struct LossAndGrad {
  at::Tensor loss, grad;
};

LossAndGrad reference(const at::Tensor& hidden, const at::Tensor& lm_head,
                      const at::Tensor& targets) {
  at::Tensor h = hidden.detach().clone().requires_grad_(true);
  at::Tensor logits = at::linear(h, lm_head).to(at::kFloat);
  at::Tensor loss = at::cross_entropy_loss(logits, targets, {}, at::Reduction::Sum);
  (loss * 0.37).backward();  // a scalar upstream gradient, as the accumulation divides the loss
  return {loss.detach(), h.grad()};
}

LossAndGrad chunked(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& targets,
                    int64_t chunk) {
  at::Tensor h = hidden.detach().clone().requires_grad_(true);
  at::Tensor loss = linear_cross_entropy_sum(h, lm_head, targets, chunk);
  (loss * 0.37).backward();
  return {loss.detach(), h.grad()};
}

TEST(LinearCrossEntropy, EqualsThePlainLossAndGradientForAnyChunking) {
  at::manual_seed(3);
  const int64_t n = 37, hidden_size = 24, vocab = 101;
  at::Tensor hidden = at::randn({n, hidden_size}) * 2;
  at::Tensor lm_head = at::randn({vocab, hidden_size});
  at::Tensor targets = at::randint(vocab, {n}, at::kLong);
  LossAndGrad want = reference(hidden, lm_head, targets);
  for (int64_t chunk : {1, 5, 36, 37, 64, 0}) {
    LossAndGrad got = chunked(hidden, lm_head, targets, chunk);
    EXPECT_NEAR(got.loss.item<double>(), want.loss.item<double>(), 1e-5 * want.loss.item<double>())
        << "chunk " << chunk;
    EXPECT_TRUE(at::allclose(got.grad, want.grad, 1e-5, 1e-6))
        << "chunk " << chunk << ": max diff " << (got.grad - want.grad).abs().max().item<double>();
  }
}

TEST(LinearCrossEntropy, HalfPrecisionFollowsHfsCasts) {
  // bf16 weights and activations: logits in bf16, softmax in fp32, the gradient cast to bf16
  // for the product with lm_head. The result is bf16 like the input.
  at::manual_seed(4);
  at::Tensor hidden = at::randn({19, 16}).to(at::kBFloat16);
  at::Tensor lm_head = at::randn({50, 16}).to(at::kBFloat16);
  at::Tensor targets = at::randint(50, {19}, at::kLong);
  LossAndGrad want = reference(hidden, lm_head, targets);
  LossAndGrad got = chunked(hidden, lm_head, targets, 4);
  EXPECT_EQ(got.loss.scalar_type(), at::kFloat);
  EXPECT_EQ(got.grad.scalar_type(), at::kBFloat16);
  EXPECT_NEAR(got.loss.item<double>(), want.loss.item<double>(), 1e-4 * want.loss.item<double>());
  EXPECT_TRUE(at::allclose(got.grad.to(at::kFloat), want.grad.to(at::kFloat), 2e-2, 1e-2));
}

TEST(LinearCrossEntropy, WithoutGradModeItOnlyCounts) {
  at::manual_seed(5);
  at::Tensor hidden = at::randn({9, 8}).requires_grad_(true);
  at::Tensor lm_head = at::randn({30, 8});
  at::Tensor targets = at::randint(30, {9}, at::kLong);
  at::NoGradGuard no_grad;
  at::Tensor loss = linear_cross_entropy_sum(hidden, lm_head, targets, 2);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss.item<double>(),
              at::cross_entropy_loss(at::linear(hidden, lm_head), targets, {}, at::Reduction::Sum)
                  .item<double>(),
              1e-4);
}

}  // namespace
}  // namespace tallrec
