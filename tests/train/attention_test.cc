// attention() (jobs/train/attention.h) against HF eager's formula written out in fp64:
// softmax(q k^T / sqrt(D) + mask) v with finfo.min in masked places, forward and backward,
// on a left-padded batch whose padding rows see no key at all, with one key/value head per query
// head and with grouped-query heads (the reference repeats k and v as HF's repeat_kv does).
#include "jobs/train/attention.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <limits>

namespace tallrec {
namespace {

struct Grads {
  at::Tensor out, dq, dk, dv;
};

Grads run(const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, const at::Tensor& g,
          bool reference, const at::Tensor& pad_mask) {
  at::Tensor q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true),
             v = v0.clone().requires_grad_(true);
  const int64_t B = q.size(0), T = q.size(2), G = q.size(1) / k.size(1);
  at::Tensor out;
  if (reference) {
    at::Tensor kr = k.repeat_interleave(G, 1), vr = v.repeat_interleave(G, 1);
    at::Tensor allowed = at::ones({T, T}, at::kBool).tril().view({1, 1, T, T}) &
                         pad_mask.to(at::kBool).view({B, 1, 1, T});
    at::Tensor mask =
        at::zeros({B, 1, T, T}, at::kDouble)
            .masked_fill(allowed.logical_not(), std::numeric_limits<double>::lowest());
    at::Tensor scores = at::matmul(q, kr.transpose(-2, -1)) / std::sqrt(double(q.size(-1))) + mask;
    out = at::matmul(scores.softmax(-1), vr);
  } else {
    out = attention(q, k, v, make_attention_mask(pad_mask, B, T, G, at::kDouble, at::kCPU));
  }
  torch::autograd::backward({out}, {g});
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

TEST(Attention, PaddingRowsMatchHfEagerForwardAndBackward) {
  for (auto [T, Nkv] : {std::pair<int64_t, int64_t>{8, 4}, {64, 4}, {8, 2}, {64, 1}}) {
    at::manual_seed(T + Nkv);
    const int64_t B = 3, Nh = 4, D = 16;
    auto opts = at::TensorOptions().dtype(at::kDouble);
    at::Tensor q = at::randn({B, Nh, T, D}, opts), k = at::randn({B, Nkv, T, D}, opts),
               v = at::randn({B, Nkv, T, D}, opts);
    at::Tensor g = at::randn({B, Nh, T, D}, opts);
    at::Tensor pad = at::ones({B, T}, at::kLong);
    pad.index_put_({1, at::indexing::Slice(0, 3)}, 0);      // 3 padding rows
    pad.index_put_({2, at::indexing::Slice(0, T - 2)}, 0);  // all but two
    const Grads want = run(q, k, v, g, true, pad), got = run(q, k, v, g, false, pad);
    EXPECT_TRUE(at::allclose(got.out, want.out, 1e-12, 1e-12)) << "T=" << T << " Nkv=" << Nkv;
    EXPECT_TRUE(at::allclose(got.dq, want.dq, 1e-10, 1e-12))
        << "T=" << T << " Nkv=" << Nkv << " max |dq err| "
        << (got.dq - want.dq).abs().max().item<double>();
    EXPECT_TRUE(at::allclose(got.dk, want.dk, 1e-10, 1e-12)) << "T=" << T << " Nkv=" << Nkv;
    EXPECT_TRUE(at::allclose(got.dv, want.dv, 1e-10, 1e-12)) << "T=" << T << " Nkv=" << Nkv;
  }
}

TEST(Attention, NoPaddingLeavesNoUnattendedRows) {
  AttentionMask m = make_attention_mask(at::ones({2, 8}, at::kLong), 2, 8, 1, at::kFloat, at::kCPU);
  EXPECT_FALSE(m.unattended.defined());
  // Two query heads per key/value head: the 4 rows appear twice.
  AttentionMask p = make_attention_mask(at::tensor({0, 0, 1, 1}, at::kLong).view({1, 4}), 1, 4, 2,
                                        at::kFloat, at::kCPU);
  ASSERT_TRUE(p.unattended.defined());
  ASSERT_EQ(p.additive.sizes(), (at::IntArrayRef{1, 1, 8, 4}));
  EXPECT_EQ(p.unattended.view({8}).to(at::kLong).sum().item<int64_t>(), 4);
  // Opened for SDPA: the padding rows' additive mask is all zero, real rows keep their mask.
  for (int64_t row : {0, 4}) EXPECT_EQ(p.additive[0][0][row].abs().sum().item<float>(), 0.0f);
  for (int64_t row : {2, 6}) EXPECT_LT(p.additive[0][0][row][0].item<float>(), -1e38f);
}

}  // namespace
}  // namespace tallrec
