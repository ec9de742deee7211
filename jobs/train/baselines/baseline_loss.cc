#include "jobs/train/baselines/baseline_loss.h"

#include <ATen/ATen.h>

namespace tallrec {

at::Tensor like_loss(const at::Tensor& score, const at::Tensor& label) {
  return at::binary_cross_entropy_with_logits(score, label.to(at::kFloat));
}

at::Tensor dros_item_weights(const EncodedSplit& train, int64_t items) {
  at::Tensor count = at::ones({items}, at::kDouble);  // n_j + 1
  for (int64_t t : train.target) count[t] += 1;
  // Over the items only: the padding id 0 is none (DROS's item table has no padding row).
  return at::sqrt(count / count.slice(0, 1).sum()).to(at::kFloat);
}

at::Tensor baseline_loss(SequentialModel& model, const SequenceBatch& batch,
                         const at::Tensor& label, const BaselineSpec& spec,
                         const at::Tensor& item_weights, bool training) {
  if (spec.method != Method::kDros || spec.dros_alpha == 0)
    return like_loss(model.score(batch, training), label);
  const at::Tensor h = model.encode(batch, training);                // [B, H]
  const at::Tensor all = at::matmul(h, model.item_embedding().t());  // [B, N]
  const at::Tensor target = batch.target.unsqueeze(1);               // [B, 1]
  const at::Tensor score = all.gather(1, target).squeeze(1);         // [B]
  const at::Tensor y = label.to(at::kFloat);
  const double beta = spec.dros_beta;
  const at::Tensor w = item_weights.slice(0, 1).unsqueeze(0);                  // [1, N-1]
  const at::Tensor w_t = item_weights.index_select(0, batch.target);           // [B]
  const at::Tensor every = at::exp(w * all.slice(1, 1).pow(2) / beta).sum(1);  // [B]
  const at::Tensor inner =
      every - at::exp(w_t * score.pow(2) / beta) + at::exp(w_t * (score - y).pow(2) / beta);
  const at::Tensor robust = at::log(inner + 1e-24);
  return like_loss(score, label) + spec.dros_alpha * robust.mean();
}

}  // namespace tallrec
