#include "jobs/train/scoring.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <functional>
#include <numeric>
#include <optional>

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

at::Tensor yes_scores(const at::Tensor& answer_logits, int64_t yes_id, int64_t no_id,
                      Scoring scoring) {
  at::Tensor l = answer_logits.to(at::kFloat);  // [N, V]
  if (scoring == Scoring::kLogitDiff) return l.select(-1, yes_id) - l.select(-1, no_id);
  at::Tensor probs = l.softmax(-1);
  at::Tensor pair = at::stack({probs.select(-1, no_id), probs.select(-1, yes_id)}, -1).softmax(-1);
  return pair.select(-1, 1);
}

namespace {

// Record indices in batches of `batch_size`, longest first (ties in index order): a batch pads
// to its longest record, and neighbours in length waste almost nothing on padding. Scores do not
// depend on the company a record keeps: test positions come from the mask, and validation's
// positions 0..T-1 shift a record's tokens together, which rotary attention does not see (a
// change in float rounding only).
std::vector<std::vector<size_t>> batches_by_length(size_t n, int64_t batch_size,
                                                   const std::function<size_t(size_t)>& length) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return length(a) > length(b); });
  std::vector<std::vector<size_t>> batches;
  for (size_t at = 0; at < n; at += size_t(batch_size))
    batches.emplace_back(order.begin() + long(at),
                         order.begin() + long(std::min(n, at + size_t(batch_size))));
  return batches;
}

// Each record's score at its index (none: skipped) -> the result's lists, in record order.
using RecordScores = std::vector<std::optional<double>>;
void collect_scores(EvalResult& r, const RecordScores& score, const TokenizedDataset& data) {
  for (size_t i = 0; i < score.size(); ++i) {
    if (!score[i]) continue;
    r.scores.push_back(*score[i]);
    r.labels.push_back(data.label(i));
  }
}

void store_scores(RecordScores& score, const at::Tensor& scores,
                  const std::vector<size_t>& records) {
  auto s = scores.to(at::kCPU).to(at::kDouble).contiguous();
  for (size_t k = 0; k < records.size(); ++k) score[records[k]] = s.data_ptr<double>()[k];
}

}  // namespace

EvalResult evaluate_validation(const LlamaModel& model, const LoraAdapters* lora,
                               const TokenizedDataset& data, int64_t batch_size, Scoring scoring) {
  at::NoGradGuard no_grad;
  const auto& meta = data.meta();
  const size_t n = data.size();
  EvalResult r;
  RecordScores score(n);
  std::vector<double> loss_sum(n, 0.0);
  std::vector<int64_t> loss_count(n, 0);
  const auto train_length = [&](size_t i) { return data.train_ids(i).size(); };
  for (const auto& rows : batches_by_length(n, batch_size, train_length)) {
    Batch b = collate_training_batch(data, rows).to(model.embed_tokens.device());
    r.padded_tokens += b.input_ids.numel();
    for (size_t i : rows) r.real_tokens += int64_t(train_length(i));
    at::Tensor hidden =
        llama_hidden(model, b.input_ids, b.attention_mask, at::Tensor(), {lora, false});
    std::vector<int64_t> batch_index, position;
    std::vector<size_t> scored;
    const int64_t width = b.input_ids.size(1);
    for (size_t k = 0; k < rows.size(); ++k) {
      auto [sum, count] = causal_lm_loss_sum(model, hidden.narrow(0, int64_t(k), 1),
                                             b.labels.narrow(0, int64_t(k), 1));
      loss_sum[rows[k]] = count > 0 ? sum.item<double>() : 0.0;
      loss_count[rows[k]] = count;
      auto ids = data.train_ids(rows[k]);
      const size_t answer = data.prompt_length(rows[k]);
      if (data.label(rows[k]) < 0 || answer >= ids.size() ||
          (ids[answer] != meta.yes_id && ids[answer] != meta.no_id)) {
        ++r.skipped;
        continue;
      }
      batch_index.push_back(int64_t(k));
      position.push_back(width - int64_t(ids.size()) + int64_t(answer) -
                         1);  // the token before the answer
      scored.push_back(rows[k]);
    }
    if (scored.empty()) continue;
    const auto device = hidden.device();
    at::Tensor picked = at::linear(hidden.index({at::tensor(batch_index, at::kLong).to(device),
                                                 at::tensor(position, at::kLong).to(device)}),
                                   model.lm_head);
    store_scores(score, yes_scores(picked, meta.yes_id, meta.no_id, scoring), scored);
  }
  // HF's validation loss: the mean of each batch's mean over its label tokens, weighted by the
  // batch's records, over the batches in record order (as the Trainer's were).
  double loss_weighted = 0;
  size_t loss_rows = 0;
  for (size_t start = 0; start < n; start += size_t(batch_size)) {
    const size_t end = std::min(n, start + size_t(batch_size));
    double sum = 0;
    int64_t count = 0;
    for (size_t i = start; i < end; ++i) sum += loss_sum[i], count += loss_count[i];
    if (count == 0) continue;
    loss_weighted += sum / double(count) * double(end - start);
    loss_rows += end - start;
  }
  r.loss = loss_rows ? loss_weighted / double(loss_rows) : 0.0;
  collect_scores(r, score, data);
  return r;
}

EvalResult evaluate_test(const LlamaModel& model, const LoraAdapters* lora,
                         const TokenizedDataset& data, int64_t batch_size, Scoring scoring) {
  at::NoGradGuard no_grad;
  const auto& meta = data.meta();
  EvalResult r;
  RecordScores score(data.size());
  const auto eval_length = [&](size_t i) { return data.eval_ids(i).size(); };
  for (const auto& batch : batches_by_length(data.size(), batch_size, eval_length)) {
    std::vector<size_t> rows;
    for (size_t i : batch) {
      if (data.label(i) < 0)
        ++r.skipped;
      else
        rows.push_back(i);
    }
    if (rows.empty()) continue;
    size_t width = 0;
    for (size_t i : rows) width = std::max(width, data.eval_ids(i).size());
    for (size_t i : rows) r.real_tokens += int64_t(data.eval_ids(i).size());
    r.padded_tokens += int64_t(rows.size() * width);
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
    store_scores(score, yes_scores(last, meta.yes_id, meta.no_id, scoring), rows);
  }
  collect_scores(r, score, data);
  return r;
}

}  // namespace tallrec
