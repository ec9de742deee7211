#include "jobs/train/lora.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "jobs/train/llama.h"
#include "jobs/train/scoring.h"
#include "small_config.h"

namespace tallrec {
namespace {
using test::small_config;

TEST(Lora, FreshAdapterGivesExactlyTheBaseLogits) {
  LlamaModel model = random_llama_model(small_config(), 1, at::kFloat);
  LoraConfig lc;
  lc.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  LoraAdapters lora(model.config, lc, 7, at::kFloat);
  at::Tensor ids = at::randint(0, 50, {2, 9}, at::kLong);
  at::NoGradGuard no_grad;
  at::Tensor base = llama_forward(model, ids, at::Tensor(), at::Tensor());
  at::Tensor adapted = llama_forward(model, ids, at::Tensor(), at::Tensor(), {&lora, false});
  EXPECT_TRUE(at::equal(base, adapted));  // B = 0: bit for bit
  // A is kaiming-uniform(a=sqrt(5)): within +-1/sqrt(fan_in), and not all zero.
  const LoraPair* q = lora.find(0, "q_proj");
  ASSERT_NE(q, nullptr);
  EXPECT_LE(q->a.abs().max().item<float>(), 1.0f / 4.0f);
  EXPECT_GT(q->a.abs().max().item<float>(), 0.1f);
  EXPECT_EQ(q->b.abs().max().item<float>(), 0.0f);
}

TEST(Lora, GradientsMatchFiniteDifferences) {
  LlamaModel model = random_llama_model(small_config(), 2, at::kDouble);  // double: tight check
  LoraConfig lc;
  lc.dropout = 0.0;
  LoraAdapters lora(model.config, lc, 3, at::kDouble);
  for (auto& p : lora.parameters()) {
    at::NoGradGuard g;
    p.normal_(0, 0.3);
    p.requires_grad_(true);
  }
  at::Tensor ids = at::randint(0, 50, {2, 7}, at::kLong);
  at::Tensor labels = ids.clone();
  labels.index_put_({0, 2}, kIgnoreIndex);
  auto loss_of = [&] {
    at::Tensor hidden = llama_hidden(model, ids, at::Tensor(), at::Tensor(), {&lora, true});
    auto [sum, count] = causal_lm_loss_sum(model, hidden, labels);
    return sum / double(count);
  };
  at::Tensor loss = loss_of();
  loss.backward();
  for (const char* module : {"q_proj", "v_proj"}) {
    LoraPair* p = lora.find(1, module);
    for (at::Tensor* t : {&p->a, &p->b}) {
      at::Tensor grad = t->grad().clone();
      for (int64_t k : {0L, 5L}) {
        const double eps = 1e-6;
        double saved;
        {
          at::NoGradGuard g;
          saved = t->view(-1)[k].item<double>();
          t->view(-1)[k].fill_(saved + eps);
        }
        double up = loss_of().item<double>();
        {
          at::NoGradGuard g;
          t->view(-1)[k].fill_(saved - eps);
        }
        double down = loss_of().item<double>();
        {
          at::NoGradGuard g;
          t->view(-1)[k].fill_(saved);
        }
        double numeric = (up - down) / (2 * eps);
        EXPECT_NEAR(grad.view(-1)[k].item<double>(), numeric, 1e-7 + 1e-5 * std::abs(numeric))
            << module << " " << k;
      }
    }
  }
}

}  // namespace
}  // namespace tallrec
