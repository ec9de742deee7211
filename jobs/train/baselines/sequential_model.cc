#include "jobs/train/baselines/sequential_model.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace tallrec {

std::unique_ptr<SequentialModel> make_gru4rec(const BaselineSpec&, const SequenceShape&);
std::unique_ptr<SequentialModel> make_caser(const BaselineSpec&, const SequenceShape&);
std::unique_ptr<SequentialModel> make_sasrec(const BaselineSpec&, const SequenceShape&);

at::Tensor SequentialModel::score(const SequenceBatch& batch, bool training) {
  const at::Tensor h = encode(batch, training);                           // [B, H]
  const at::Tensor e = at::embedding(item_embedding(), batch.target, 0);  // [B, H]
  return at::mul(h, e).sum(1);                                            // [B]
}

at::Tensor SequentialModel::add(const std::string& name, at::Tensor t) {
  t.set_requires_grad(true);
  parameters_.emplace_back(name, t);
  return t;
}

std::unique_ptr<SequentialModel> make_sequential_model(const BaselineSpec& spec,
                                                       const SequenceShape& shape) {
  switch (spec.method) {
    case Method::kGru4Rec:
      return make_gru4rec(spec, shape);
    case Method::kCaser:
      return make_caser(spec, shape);
    case Method::kSasRec:
    case Method::kDros:  // DROS is a loss on SASRec's backbone
      return make_sasrec(spec, shape);
    case Method::kLlm:
      break;
  }
  throw InputError("not a sequential recommender: " + std::string(name_of(spec.method)));
}

}  // namespace tallrec
