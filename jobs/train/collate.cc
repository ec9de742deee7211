#include "jobs/train/collate.h"

#include <ATen/ops/full.h>

#include <algorithm>

namespace tallrec {

Batch collate_training_batch(const TokenizedDataset& data, std::span<const size_t> records,
                             int64_t pad_to_multiple_of) {
  size_t longest = 0;
  for (size_t r : records) longest = std::max(longest, data.train_ids(r).size());
  int64_t width = int64_t(longest);
  if (pad_to_multiple_of > 1)
    width = (width + pad_to_multiple_of - 1) / pad_to_multiple_of * pad_to_multiple_of;
  const int64_t rows = int64_t(records.size());
  auto opts = at::TensorOptions().dtype(at::kLong);
  Batch b{at::full({rows, width}, data.meta().pad_id, opts), at::full({rows, width}, 0, opts),
          at::full({rows, width}, kIgnoreIndex, opts)};
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<int64_t, 2>();
  auto labels = b.labels.accessor<int64_t, 2>();
  for (int64_t row = 0; row < rows; ++row) {
    auto seq = data.train_ids(records[size_t(row)]);
    auto lab = data.training_labels(records[size_t(row)]);
    const int64_t start = width - int64_t(seq.size());  // left padding
    for (size_t k = 0; k < seq.size(); ++k) {
      ids[row][start + int64_t(k)] = seq[k];
      mask[row][start + int64_t(k)] = 1;
      labels[row][start + int64_t(k)] = lab[k];
    }
  }
  return b;
}

}  // namespace tallrec
