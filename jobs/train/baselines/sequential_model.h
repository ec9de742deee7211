// Table 1's sequential recommenders as RecBole 1.2.1 builds them (GRU4Rec, Caser, SASRec), turned
// into like/dislike predictors the way TALLRec's authors describe theirs: a user's history
// becomes a vector h (the model's forward), the target item's embedding e, and
//   score = <h, e>        (RecBole's predict())
//   P(like) = sigmoid(score), trained with binary cross-entropy on the label.
// Parameters carry RecBole's state_dict names and initialisation, so a RecBole model's weights
// load here and ours load there (tests/oracle/test_baselines_vs_recbole.py checks scores and
// gradients on the same weights).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/baseline_spec.h"

namespace tallrec {

// A batch of records, all int64 on the model's device: user [B], history [B, L] right-padded
// with 0, history_length [B] in [1, L], target [B].
struct SequenceBatch {
  at::Tensor user, history, history_length, target;
};

// The sizes a model is built for: ids below `items` and `users` (0 pads), histories of
// `max_history` ids.
struct SequenceShape {
  int64_t items = 0, users = 0, max_history = 0;
};

class SequentialModel {
 public:
  virtual ~SequentialModel() = default;
  // h: [B, hidden]; `training` switches dropout on.
  virtual at::Tensor encode(const SequenceBatch& batch, bool training) = 0;
  // The item embedding table [items, hidden] that scores targets.
  virtual const at::Tensor& item_embedding() const = 0;
  // score [B] = <encode(batch), item_embedding[target]>.
  at::Tensor score(const SequenceBatch& batch, bool training);
  // Every trainable tensor with its RecBole name, in a fixed order.
  std::vector<std::pair<std::string, at::Tensor>>& parameters() { return parameters_; }

 protected:
  // Registers a trainable tensor under `name`; returns it.
  at::Tensor add(const std::string& name, at::Tensor t);
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
};

// Builds spec.method's model for `shape`, initialised as RecBole does from libtorch's global
// generator (the caller seeds it).
std::unique_ptr<SequentialModel> make_sequential_model(const BaselineSpec& spec,
                                                       const SequenceShape& shape);

}  // namespace tallrec
