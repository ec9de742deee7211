#include "jobs/train/scoring.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <numeric>

#include "common/error.h"
#include "jobs/train/collate.h"
#include "jobs/train/lm_loss.h"

namespace tallrec {

std::pair<at::Tensor, int64_t> causal_lm_loss_sum(const LlamaModel& model, const at::Tensor& hidden,
                                                  const at::Tensor& labels) {
  const int64_t H = hidden.size(-1);
  at::Tensor shifted =
      at::constant_pad_nd(labels.narrow(1, 1, labels.size(1) - 1), {0, 1}, kIgnoreIndex)
          .reshape({-1});
  at::Tensor rows = shifted.ne(kIgnoreIndex).nonzero().squeeze(1);
  at::Tensor sum = linear_cross_entropy_sum(hidden.reshape({-1, H}).index_select(0, rows),
                                            model.lm_head, shifted.index_select(0, rows));
  return {sum, rows.size(0)};
}

Scoring parse_scoring(const std::string& name) {
  if (name == "tallrec") return Scoring::kTallrec;
  if (name == "logit_diff") return Scoring::kLogitDiff;
  throw InputError("unknown scoring \"" + name + "\" (expected tallrec or logit_diff)");
}

at::Tensor yes_scores(const at::Tensor& answer_logits, int64_t yes_id, int64_t no_id,
                      Scoring scoring) {
  at::Tensor l = answer_logits.to(at::kFloat);  // [N, V]
  if (scoring == Scoring::kLogitDiff) return l.select(-1, yes_id) - l.select(-1, no_id);
  at::Tensor probs = l.softmax(-1);
  at::Tensor pair = at::stack({probs.select(-1, no_id), probs.select(-1, yes_id)}, -1).softmax(-1);
  return pair.select(-1, 1);
}

namespace {

void append_scores(EvalResult& r, const at::Tensor& scores, const std::vector<int>& labels) {
  auto s = scores.to(at::kCPU).to(at::kDouble).contiguous();
  for (int64_t i = 0; i < s.size(0); ++i) {
    r.scores.push_back(s.data_ptr<double>()[i]);
    r.labels.push_back(labels[size_t(i)]);
  }
}

}  // namespace

EvalResult evaluate_validation(const LlamaModel& model, const LoraAdapters* lora,
                               const TokenizedDataset& data, int64_t batch_size, Scoring scoring) {
  at::NoGradGuard no_grad;
  EvalResult r;
  double loss_weighted = 0;
  size_t loss_rows = 0;
  const auto& meta = data.meta();
  for (size_t start = 0; start < data.size(); start += size_t(batch_size)) {
    std::vector<size_t> rows(std::min(size_t(batch_size), data.size() - start));
    std::iota(rows.begin(), rows.end(), start);
    Batch b = collate_training_batch(data, rows).to(model.embed_tokens.device());
    at::Tensor hidden =
        llama_hidden(model, b.input_ids, b.attention_mask, at::Tensor(), {lora, false});
    auto [sum, count] = causal_lm_loss_sum(model, hidden, b.labels);
    if (count > 0) {  // HF: the mean of per-batch mean losses, weighted by batch size
      loss_weighted += sum.item<double>() / double(count) * double(rows.size());
      loss_rows += rows.size();
    }
    std::vector<int64_t> batch_index, position;
    std::vector<int> labels;
    const int64_t width = b.input_ids.size(1);
    for (size_t k = 0; k < rows.size(); ++k) {
      auto ids = data.train_ids(rows[k]);
      const size_t answer = data.prompt_length(rows[k]);
      const int label = data.label(rows[k]);
      if (label < 0 || answer >= ids.size() ||
          (ids[answer] != meta.yes_id && ids[answer] != meta.no_id)) {
        ++r.skipped;
        continue;
      }
      batch_index.push_back(int64_t(k));
      position.push_back(width - int64_t(ids.size()) + int64_t(answer) -
                         1);  // the token before the answer
      labels.push_back(label);
    }
    if (batch_index.empty()) continue;
    const auto device = hidden.device();
    at::Tensor picked = at::linear(hidden.index({at::tensor(batch_index, at::kLong).to(device),
                                                 at::tensor(position, at::kLong).to(device)}),
                                   model.lm_head);
    append_scores(r, yes_scores(picked, meta.yes_id, meta.no_id, scoring), labels);
  }
  r.loss = loss_rows ? loss_weighted / double(loss_rows) : 0.0;
  return r;
}

EvalResult evaluate_test(const LlamaModel& model, const LoraAdapters* lora,
                         const TokenizedDataset& data, int64_t batch_size, Scoring scoring) {
  at::NoGradGuard no_grad;
  EvalResult r;
  const auto& meta = data.meta();
  for (size_t start = 0; start < data.size(); start += size_t(batch_size)) {
    std::vector<size_t> rows;
    std::vector<int> labels;
    for (size_t i = start; i < std::min(data.size(), start + size_t(batch_size)); ++i) {
      if (data.label(i) < 0) {
        ++r.skipped;
        continue;
      }
      rows.push_back(i);
      labels.push_back(data.label(i));
    }
    if (rows.empty()) continue;
    size_t width = 0;
    for (size_t i : rows) width = std::max(width, data.eval_ids(i).size());
    at::Tensor ids = at::full({int64_t(rows.size()), int64_t(width)}, meta.pad_id, at::kLong);
    at::Tensor mask = at::zeros({int64_t(rows.size()), int64_t(width)}, at::kLong);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (size_t k = 0; k < rows.size(); ++k) {
      auto seq = data.eval_ids(rows[k]);
      const int64_t begin = int64_t(width - seq.size());  // left padding
      for (size_t t = 0; t < seq.size(); ++t) {
        ids_a[int64_t(k)][begin + int64_t(t)] = seq[t];
        mask_a[int64_t(k)][begin + int64_t(t)] = 1;
      }
    }
    ids = ids.to(model.embed_tokens.device());
    mask = mask.to(model.embed_tokens.device());
    at::Tensor hidden = llama_hidden(model, ids, mask, positions_from_mask(mask), {lora, false});
    at::Tensor last = at::linear(hidden.select(1, int64_t(width) - 1), model.lm_head);  // [N, V]
    append_scores(r, yes_scores(last, meta.yes_id, meta.no_id, scoring), labels);
  }
  return r;
}

}  // namespace tallrec
