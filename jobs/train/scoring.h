// Yes/No scoring and the losses, shared by training, validation and test evaluation.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "common/spec_enums.h"
#include "jobs/data/token_file.h"
#include "jobs/train/llama.h"

namespace tallrec {

// Cross-entropy of position t against labels[:, t+1] (HF's shift), kIgnoreIndex ignored, from
// hidden states [B, T, H]: only positions that have a label go through the vocabulary.
// Returns {sum over label tokens, number of label tokens}.
std::pair<at::Tensor, int64_t> causal_lm_loss_sum(const LlamaModel& model, const at::Tensor& hidden,
                                                  const at::Tensor& labels);

// P(Yes) from one row of logits [V]: TALLRec's softmax over the vocabulary, then softmax over
// [No, Yes] (kTallrec), or logit(Yes) - logit(No) (kLogitDiff; same ranking, no double softmax).
at::Tensor yes_scores(const at::Tensor& answer_logits, int64_t yes_id, int64_t no_id,
                      Scoring scoring);

struct EvalResult {
  std::vector<int> labels;
  std::vector<double> scores;
  double loss = 0;     // mean cross-entropy (validation only)
  size_t skipped = 0;  // records without a usable answer (truncated away, or output not Yes./No.)
  int64_t real_tokens = 0, padded_tokens = 0;  // tokens of the records, and of the batches run
  double padding_fraction() const {
    return padded_tokens ? 1.0 - double(real_tokens) / double(padded_tokens) : 0.0;
  }
};

// Validation as TALLRec's Trainer does it: the training sequences (answer included), batched
// with left padding and positions 0..T-1; the score is read at the token before the answer.
// Batches are formed longest first, not in record order (less padding; the scores change by
// float rounding only), and the loss is HF's mean of per-batch means over record-order batches.
// Both evaluations return scores and labels in record order.
EvalResult evaluate_validation(const LlamaModel& model, const LoraAdapters* lora,
                               const TokenizedDataset& data, int64_t batch_size, Scoring scoring);

// Test scoring as TALLRec's evaluate.py: one forward pass over the prompt ending after
// "### Response:\n", the score read at its last token; batched longest first with left padding
// and positions from the mask, which gives the unbatched result.
EvalResult evaluate_test(const LlamaModel& model, const LoraAdapters* lora,
                         const TokenizedDataset& data, int64_t batch_size, Scoring scoring);

}  // namespace tallrec
