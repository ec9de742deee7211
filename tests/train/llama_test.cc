#include "jobs/train/llama.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "small_config.h"

namespace tallrec {
namespace {
using test::small_config;

TEST(Llama, LeftPaddingWithMaskPositionsScoresLikeNoPadding) {
  LlamaModel model = random_llama_model(small_config(), 4, at::kFloat);
  at::NoGradGuard no_grad;
  at::Tensor seq = at::randint(3, 50, {1, 6}, at::kLong);
  at::Tensor alone = llama_forward(model, seq, at::Tensor(), at::Tensor());
  at::Tensor padded = at::cat({at::zeros({1, 3}, at::kLong), seq}, 1);
  at::Tensor mask = at::cat({at::zeros({1, 3}, at::kLong), at::ones({1, 6}, at::kLong)}, 1);
  at::Tensor out = llama_forward(model, padded, mask, positions_from_mask(mask));
  EXPECT_FALSE(at::isnan(out).any().item<bool>()) << "padding rows must not produce NaN";
  EXPECT_TRUE(at::allclose(out.narrow(1, 3, 6), alone, 1e-5, 1e-5));
}

}  // namespace
}  // namespace tallrec
