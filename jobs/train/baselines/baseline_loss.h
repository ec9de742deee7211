// What a baseline minimises. Every method: the like/dislike loss, binary cross-entropy of
// sigmoid(score) against the label (torch.nn.BCEWithLogitsLoss's mean). DROS adds
//   dros_alpha x mean_i log( sum_j exp(w_j s_ij^2 / beta) - exp(w_t s_it^2 / beta)
//                            + exp(w_t (s_it - y_i)^2 / beta) + 1e-24 )
// over every item j (the padding id 0 left out), where s_ij = <h_i, e_j> is record i's score of
// item j, t its target, y_i its label and w_j = sqrt((n_j + 1) / sum_k (n_k + 1)) with n_j the
// times item j is a target among the training records. This is DROS's robust term (its
// A_SASRec_final_bce.py) with one change for like/dislike data: the target's score is pulled
// towards the record's label, not always towards 1.
#pragma once

#include <ATen/core/Tensor.h>

#include "common/baseline_spec.h"
#include "jobs/data/baseline_inputs.h"
#include "jobs/train/baselines/sequential_model.h"

namespace tallrec {

// torch.nn.BCEWithLogitsLoss()(score, label): the mean over the batch.
at::Tensor like_loss(const at::Tensor& score, const at::Tensor& label);

// DROS's item weights w [items] from the training records' targets (above); float32.
at::Tensor dros_item_weights(const EncodedSplit& train, int64_t items);

// The batch's loss for spec.method; `item_weights` is used by DROS only.
at::Tensor baseline_loss(SequentialModel& model, const SequenceBatch& batch,
                         const at::Tensor& label, const BaselineSpec& spec,
                         const at::Tensor& item_weights, bool training);

}  // namespace tallrec
