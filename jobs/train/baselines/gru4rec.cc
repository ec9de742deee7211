// GRU4Rec as RecBole 1.2.1's sequential_recommender/gru4rec.py builds it (embedding size = hidden
// size here):
//   history [B, L] -> item_embedding -> dropout -> GRU (no biases) -> dense -> the output at the
//   history's last item: h [B, H].
#include <ATen/ATen.h>

#include "jobs/train/baselines/init.h"
#include "jobs/train/baselines/sequential_model.h"

namespace tallrec {
namespace {

class Gru4Rec : public SequentialModel {
 public:
  Gru4Rec(const BaselineSpec& spec, const SequenceShape& shape)
      : dropout_(spec.dropout), layers_(spec.gru4rec_layers) {
    const int64_t h = spec.hidden_size;
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    items_ = add("item_embedding.weight", init::xavier_normal(at::empty({shape.items, h}, f32)));
    for (int64_t l = 0; l < layers_; ++l) {
      // torch's GRU default U(-1/sqrt(H), 1/sqrt(H)); RecBole re-draws layer 0 Xavier-uniform.
      at::Tensor w_ih = init::torch_default(at::empty({3 * h, h}, f32), double(h));
      at::Tensor w_hh = init::torch_default(at::empty({3 * h, h}, f32), double(h));
      if (l == 0) {
        init::xavier_uniform(w_ih);
        init::xavier_uniform(w_hh);
      }
      gru_.push_back(add("gru_layers.weight_ih_l" + std::to_string(l), w_ih));
      gru_.push_back(add("gru_layers.weight_hh_l" + std::to_string(l), w_hh));
    }
    dense_w_ = add("dense.weight", init::torch_default(at::empty({h, h}, f32), double(h)));
    dense_b_ = add("dense.bias", init::torch_default(at::empty({h}, f32), double(h)));
  }

  at::Tensor encode(const SequenceBatch& b, bool training) override {
    at::Tensor x = at::embedding(items_, b.history, 0);  // [B, L, H]
    x = at::dropout(x, dropout_, training);
    const at::Tensor h0 = at::zeros({layers_, x.size(0), items_.size(1)}, x.options());
    at::Tensor out = std::get<0>(at::gru(x, h0, gru_, /*has_biases=*/false, layers_,
                                         /*dropout=*/0.0, training, /*bidirectional=*/false,
                                         /*batch_first=*/true));  // [B, L, H]
    out = at::linear(out, dense_w_, dense_b_);
    const at::Tensor last = (b.history_length - 1).view({-1, 1, 1}).expand({-1, 1, out.size(2)});
    return out.gather(1, last).squeeze(1);  // [B, H]
  }
  const at::Tensor& item_embedding() const override { return items_; }

 private:
  double dropout_;
  int64_t layers_;
  at::Tensor items_, dense_w_, dense_b_;
  std::vector<at::Tensor> gru_;
};

}  // namespace

std::unique_ptr<SequentialModel> make_gru4rec(const BaselineSpec& spec,
                                              const SequenceShape& shape) {
  return std::make_unique<Gru4Rec>(spec, shape);
}

}  // namespace tallrec
