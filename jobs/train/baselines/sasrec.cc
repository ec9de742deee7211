// SASRec as RecBole 1.2.1's sequential_recommender/sasrec.py and model/layers.py build it:
//   x = dropout(LayerNorm(item_embedding[history] + position_embedding[0..L)))      [B, L, H]
//   each layer: a = LayerNorm(x + dropout(dense(attention(x))))
//               x = LayerNorm(a + dropout(dense_2(gelu(dense_1(a)))))
//   attention: n heads of size H/n, scores / sqrt(H/n) + mask, softmax, dropout; the mask lets a
//   position see itself and earlier non-padding positions (-10000 elsewhere, as RecBole)
//   h = x at the history's last item                                              [B, H]
#include <ATen/ATen.h>

#include <cmath>

#include "jobs/train/baselines/init.h"
#include "jobs/train/baselines/sequential_model.h"

namespace tallrec {
namespace {

constexpr double kLayerNormEps = 1e-12;     // RecBole's layer_norm_eps
constexpr double kInitializerRange = 0.02;  // RecBole's initializer_range

class SasRec : public SequentialModel {
 public:
  SasRec(const BaselineSpec& spec, const SequenceShape& shape)
      : dropout_(spec.dropout), heads_(spec.sasrec_heads), hidden_(spec.hidden_size) {
    const int64_t h = hidden_, inner = spec.sasrec_inner_size;
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    // RecBole: every Linear and Embedding N(0, 0.02) with zero biases, LayerNorms 1 and 0.
    auto weight = [&](std::vector<int64_t> shape_) {
      return init::normal(at::empty(shape_, f32), kInitializerRange);
    };
    items_ = add("item_embedding.weight", weight({shape.items, h}));
    positions_ = add("position_embedding.weight", weight({shape.max_history, h}));
    for (int64_t l = 0; l < spec.sasrec_layers; ++l) {
      const std::string p = "trm_encoder.layer." + std::to_string(l) + ".";
      const std::string a = p + "multi_head_attention.", f = p + "feed_forward.";
      Layer layer;
      for (auto [name, w, b] :
           {std::tuple{"query", &layer.q_w, &layer.q_b}, std::tuple{"key", &layer.k_w, &layer.k_b},
            std::tuple{"value", &layer.v_w, &layer.v_b},
            std::tuple{"dense", &layer.o_w, &layer.o_b}}) {
        *w = add(a + name + ".weight", weight({h, h}));
        *b = add(a + name + ".bias", at::zeros({h}, f32));
      }
      layer.ln1_w = add(a + "LayerNorm.weight", at::ones({h}, f32));
      layer.ln1_b = add(a + "LayerNorm.bias", at::zeros({h}, f32));
      layer.ff1_w = add(f + "dense_1.weight", weight({inner, h}));
      layer.ff1_b = add(f + "dense_1.bias", at::zeros({inner}, f32));
      layer.ff2_w = add(f + "dense_2.weight", weight({h, inner}));
      layer.ff2_b = add(f + "dense_2.bias", at::zeros({h}, f32));
      layer.ln2_w = add(f + "LayerNorm.weight", at::ones({h}, f32));
      layer.ln2_b = add(f + "LayerNorm.bias", at::zeros({h}, f32));
      layers_.push_back(layer);
    }
    ln_w_ = add("LayerNorm.weight", at::ones({h}, f32));
    ln_b_ = add("LayerNorm.bias", at::zeros({h}, f32));
  }

  at::Tensor encode(const SequenceBatch& b, bool training) override {
    const int64_t L = b.history.size(1);
    at::Tensor x = at::embedding(items_, b.history, 0) + positions_.slice(0, 0, L).unsqueeze(0);
    x = at::dropout(at::layer_norm(x, {hidden_}, ln_w_, ln_b_, kLayerNormEps), dropout_, training);
    // RecBole's get_attention_mask: [B, 1, L, L], 0 where allowed, -10000 elsewhere.
    const at::Tensor allowed =
        at::tril((b.history != 0).unsqueeze(1).unsqueeze(2).expand({-1, -1, L, -1}));
    const at::Tensor mask = at::where(allowed, at::scalar_tensor(0.0, x.options()),
                                      at::scalar_tensor(-10000.0, x.options()));
    for (const Layer& layer : layers_)
      x = feed_forward(layer, attention(layer, x, mask, training), training);
    const at::Tensor last = (b.history_length - 1).view({-1, 1, 1}).expand({-1, 1, hidden_});
    return x.gather(1, last).squeeze(1);  // [B, H]
  }
  const at::Tensor& item_embedding() const override { return items_; }

 private:
  struct Layer {
    at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b;
    at::Tensor ff1_w, ff1_b, ff2_w, ff2_b, ln2_w, ln2_b;
  };

  at::Tensor attention(const Layer& l, const at::Tensor& x, const at::Tensor& mask,
                       bool training) const {
    const int64_t B = x.size(0), L = x.size(1), d = hidden_ / heads_;
    auto split = [&](const at::Tensor& t) { return t.view({B, L, heads_, d}); };
    const at::Tensor q = split(at::linear(x, l.q_w, l.q_b)).permute({0, 2, 1, 3});  // [B,n,L,d]
    const at::Tensor k = split(at::linear(x, l.k_w, l.k_b)).permute({0, 2, 3, 1});  // [B,n,d,L]
    const at::Tensor v = split(at::linear(x, l.v_w, l.v_b)).permute({0, 2, 1, 3});  // [B,n,L,d]
    at::Tensor scores = at::matmul(q, k) / std::sqrt(double(d)) + mask;             // [B,n,L,L]
    at::Tensor probs = at::dropout(at::softmax(scores, -1), dropout_, training);
    at::Tensor context =
        at::matmul(probs, v).permute({0, 2, 1, 3}).contiguous().view({B, L, hidden_});
    at::Tensor out = at::dropout(at::linear(context, l.o_w, l.o_b), dropout_, training);
    return at::layer_norm(out + x, {hidden_}, l.ln1_w, l.ln1_b, kLayerNormEps);
  }

  at::Tensor feed_forward(const Layer& l, const at::Tensor& x, bool training) const {
    at::Tensor h = at::linear(x, l.ff1_w, l.ff1_b);
    h = h * 0.5 * (1.0 + at::erf(h / std::sqrt(2.0)));  // RecBole's gelu, written as it writes it
    h = at::dropout(at::linear(h, l.ff2_w, l.ff2_b), dropout_, training);
    return at::layer_norm(h + x, {hidden_}, l.ln2_w, l.ln2_b, kLayerNormEps);
  }

  double dropout_;
  int64_t heads_, hidden_;
  at::Tensor items_, positions_, ln_w_, ln_b_;
  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<SequentialModel> make_sasrec(const BaselineSpec& spec, const SequenceShape& shape) {
  return std::make_unique<SasRec>(spec, shape);
}

}  // namespace tallrec
