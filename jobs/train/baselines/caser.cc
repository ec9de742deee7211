// Caser as RecBole 1.2.1's sequential_recommender/caser.py builds it (T = 1):
//   history [B, L] -> item_embedding as a one-channel image E [B, 1, L, H]
//   vertical:   conv (nv filters of L x 1)            -> [B, nv * H]
//   horizontal: for each height i in 1..L, conv (nh filters of i x H) -> relu -> max over
//               positions                              -> [B, nh * L]
//   dropout -> fc1 -> relu = z; h = relu(fc2([z, user_embedding[user]])) [B, H].
// The user embedding makes Caser the one baseline that knows who the user is.
#include <ATen/ATen.h>

#include "jobs/train/baselines/init.h"
#include "jobs/train/baselines/sequential_model.h"

namespace tallrec {
namespace {

class Caser : public SequentialModel {
 public:
  Caser(const BaselineSpec& spec, const SequenceShape& shape)
      : dropout_(spec.dropout), nv_(spec.caser_vertical_filters) {
    const int64_t h = spec.hidden_size, L = shape.max_history, nh = spec.caser_horizontal_filters;
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    // RecBole: embeddings N(0, 1/H), linear layers Xavier-normal with zero bias, convolutions
    // torch's defaults.
    users_ = add("user_embedding.weight", init::normal(at::empty({shape.users, h}, f32), 1.0 / h));
    items_ = add("item_embedding.weight", init::normal(at::empty({shape.items, h}, f32), 1.0 / h));
    conv_v_w_ = add("conv_v.weight", init::torch_default(at::empty({nv_, 1, L, 1}, f32), L));
    conv_v_b_ = add("conv_v.bias", init::torch_default(at::empty({nv_}, f32), L));
    for (int64_t i = 1; i <= L; ++i) {
      const std::string name = "conv_h." + std::to_string(i - 1);
      const double fan_in = double(i * h);
      conv_h_.push_back(
          {add(name + ".weight", init::torch_default(at::empty({nh, 1, i, h}, f32), fan_in)),
           add(name + ".bias", init::torch_default(at::empty({nh}, f32), fan_in))});
    }
    const int64_t fc1_in = nv_ * h + nh * L;
    fc1_w_ = add("fc1.weight", init::xavier_normal(at::empty({h, fc1_in}, f32)));
    fc1_b_ = add("fc1.bias", at::zeros({h}, f32));
    fc2_w_ = add("fc2.weight", init::xavier_normal(at::empty({h, 2 * h}, f32)));
    fc2_b_ = add("fc2.bias", at::zeros({h}, f32));
  }

  at::Tensor encode(const SequenceBatch& b, bool training) override {
    const at::Tensor image = at::embedding(items_, b.history, 0).unsqueeze(1);  // [B, 1, L, H]
    const at::Tensor user = at::embedding(users_, b.user, 0);                   // [B, H]
    const at::Tensor v =
        at::conv2d(image, conv_v_w_, conv_v_b_).view({-1, nv_ * items_.size(1)});  // [B, nv*H]
    std::vector<at::Tensor> parts{v};
    for (const auto& [w, bias] : conv_h_) {
      const at::Tensor c = at::relu(at::conv2d(image, w, bias).squeeze(3));  // [B, nh, L-i+1]
      parts.push_back(at::max_pool1d(c, {c.size(2)}).squeeze(2));            // [B, nh]
    }
    at::Tensor out = at::dropout(at::cat(parts, 1), dropout_, training);
    const at::Tensor z = at::relu(at::linear(out, fc1_w_, fc1_b_));
    return at::relu(at::linear(at::cat({z, user}, 1), fc2_w_, fc2_b_));  // [B, H]
  }
  const at::Tensor& item_embedding() const override { return items_; }

 private:
  double dropout_;
  int64_t nv_;
  at::Tensor users_, items_, conv_v_w_, conv_v_b_, fc1_w_, fc1_b_, fc2_w_, fc2_b_;
  std::vector<std::pair<at::Tensor, at::Tensor>> conv_h_;
};

}  // namespace

std::unique_ptr<SequentialModel> make_caser(const BaselineSpec& spec, const SequenceShape& shape) {
  return std::make_unique<Caser>(spec, shape);
}

}  // namespace tallrec
