// lean_ops.h against the plain ATen expressions they replace (forward and every gradient, in
// each dtype a run uses), and what a decoder layer keeps alive for backward: the bytes glibc
// holds between forward and backward, measured per token on a SmolLM2-shaped layer.
#include "jobs/train/lean_ops.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <torch/csrc/autograd/autograd.h>

#include "common/memory_estimate.h"
#include "jobs/train/llama.h"
#include "jobs/train/lora.h"

namespace tallrec {
namespace {

at::Tensor leaf(const at::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// Gradients of sum(out * g) with respect to `inputs`.
std::vector<at::Tensor> grads(const at::Tensor& out, const at::Tensor& g,
                              const std::vector<at::Tensor>& inputs) {
  return torch::autograd::grad({out}, inputs, {g});
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double tol, const char* what) {
  const double scale = want.abs().max().item<double>() + 1e-30;
  const double err = (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
  EXPECT_LE(err, tol * scale) << what << " (" << got.scalar_type() << "): max error " << err
                              << " against max " << scale;
}

TEST(LeanOps, RmsNormIsHfsExpressionForwardAndBackward) {
  for (auto dtype : {at::kDouble, at::kFloat, at::kBFloat16}) {
    at::manual_seed(1);
    at::Tensor x = at::randn({3, 5, 64}).to(dtype), w = (1 + at::randn({64}) * 0.1).to(dtype);
    at::Tensor g = at::randn({3, 5, 64}).to(dtype);
    at::Tensor x1 = leaf(x), x2 = leaf(x);
    at::Tensor got = rms_norm(x1, w, 1e-5);
    at::Tensor xf = x2.to(at::promote_types(dtype, at::kFloat));
    at::Tensor want = w * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-5)).to(dtype);
    EXPECT_TRUE(at::equal(got, want)) << dtype;
    const double tol = dtype == at::kBFloat16 ? 1e-2 : dtype == at::kFloat ? 1e-6 : 1e-14;
    expect_close(grads(got, g, {x1})[0], grads(want, g, {x2})[0], tol, "d rms_norm / dx");
  }
}

TEST(LeanOps, SwigluIsSiluTimesUpForwardAndBackward) {
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::manual_seed(2);
    at::Tensor gate = at::randn({4, 7, 24}).to(dtype), up = at::randn({4, 7, 24}).to(dtype);
    at::Tensor g = at::randn({4, 7, 24}).to(dtype);
    at::Tensor g1 = leaf(gate), u1 = leaf(up), g2 = leaf(gate), u2 = leaf(up);
    at::Tensor got = swiglu(g1, u1), want = at::silu(g2) * u2;
    EXPECT_TRUE(at::equal(got, want)) << dtype;
    auto a = grads(got, g, {g1, u1}), b = grads(want, g, {g2, u2});
    EXPECT_TRUE(at::equal(a[0], b[0])) << "d gate, " << dtype;
    EXPECT_TRUE(at::equal(a[1], b[1])) << "d up, " << dtype;
  }
}

// PEFT's expression, as llama.cc computed it before lora_update.
at::Tensor peft_lora(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double p,
                     bool training, double scaling) {
  const auto dt = x.scalar_type();
  return at::linear(at::linear(at::dropout(x, p, training), a.to(dt)), b.to(dt)) * scaling;
}

TEST(LeanOps, LoraUpdateDrawsPeftsDropoutAndMatchesItsGradients) {
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (bool training : {true, false}) {
      at::manual_seed(3);
      at::Tensor x = at::randn({2, 9, 32}).to(dtype), g = at::randn({2, 9, 48}).to(dtype);
      at::Tensor a = at::randn({8, 32}) * 0.2, b = at::randn({48, 8}) * 0.2;  // fp32 masters
      at::Tensor x1 = leaf(x), a1 = leaf(a), b1 = leaf(b), x2 = leaf(x), a2 = leaf(a), b2 = leaf(b);
      at::manual_seed(4);
      at::Tensor got = lora_update(x1, a1, b1, 0.3, training, 2.0);
      at::manual_seed(4);  // the same draw: the same dropout mask
      at::Tensor want = peft_lora(x2, a2, b2, 0.3, training, 2.0);
      EXPECT_TRUE(at::equal(got, want)) << dtype << " training " << training;
      auto d1 = grads(got, g, {x1, a1, b1}), d2 = grads(want, g, {x2, a2, b2});
      const double tol = dtype == at::kBFloat16 ? 1e-2 : 1e-6;
      expect_close(d1[0], d2[0], tol, "dx");
      expect_close(d1[1], d2[1], tol, "dA");
      expect_close(d1[2], d2[2], tol, "dB");
      EXPECT_EQ(d1[1].scalar_type(), at::kFloat);  // the masters' gradients stay fp32
    }
  }
}

// Bytes glibc has handed out and not had back.
size_t live_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

LlamaConfig smollm2_layers(int64_t layers) {
  LlamaConfig c;  // SmolLM2-135M's layer
  c.vocab_size = 64;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 9;
  c.num_key_value_heads = 3;
  return c;
}

// What the forward of a model with `layers` layers keeps alive until backward, beyond its output.
double kept_bytes(int64_t layers, int64_t batch, int64_t tokens) {
  const LlamaConfig c = smollm2_layers(layers);
  LlamaModel model = random_llama_model(c, 1, at::kFloat);
  LoraConfig lc;  // TALLRec's: r 8 on q and v, dropout 0.05
  LoraAdapters lora(c, lc, 2, at::kFloat);
  for (auto& p : lora.parameters()) p.requires_grad_(true);
  at::Tensor ids = at::randint(0, 64, {batch, tokens}, at::kLong);
  at::Tensor mask = at::ones({batch, tokens}, at::kLong);
  mask.narrow(1, 0, 5).fill_(0);  // left padding, as every TALLRec batch has
  const size_t before = live_bytes();
  at::Tensor hidden = llama_hidden(model, ids, mask, at::Tensor(), {&lora, /*training=*/true});
  const size_t after = live_bytes();
  return double(after - before) - double(hidden.nbytes());
}

TEST(LeanOps, ADecoderLayerKeepsAtMost27AndAHalfKBATokenForBackward) {
  // The difference between two and one layers is one layer's saved tensors; what every layer
  // shares (rotary tables, the mask) cancels. Plain autograd kept 41.6 KB a token here (the
  // dropout noise and dropped input per adapter, k/v repeated to 9 heads, silu(gate)); the lean
  // layer keeps 26.6 KB (lean_ops.h, attention.h), plus the padding rows' [B, Nkv, D, D] (0.2 KB
  // a token at T = 256).
  const int64_t B = 2, T = 256;
  kept_bytes(1, B, T);  // warm: the first forward allocates libtorch's own buffers
  const double per_token = (kept_bytes(2, B, T) - kept_bytes(1, B, T)) / double(B * T);
  RecordProperty("bytes_per_token", std::to_string(per_token));
  EXPECT_LE(per_token, 27.5 * 1000) << "a layer keeps " << per_token << " bytes a token";
  EXPECT_GE(per_token, 20.0 * 1000) << "less than the layer's inputs: measuring something else?";
  // The pre-flight's estimate (common/memory_estimate.h) counts the same tensors.
  const double estimate = layer_bytes_per_token(smollm2_layers(1), 4, 8, {"q_proj", "v_proj"});
  EXPECT_NEAR(per_token, estimate, 0.03 * estimate);
}

}  // namespace
}  // namespace tallrec
