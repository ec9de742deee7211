// Micro-batches as TALLRec's DataCollatorForSeq2Seq builds them with padding_side="left":
// sequences left-padded to the longest in the batch, rounded up to a multiple of 8; input ids
// padded with pad_id (0), attention mask 0 on padding, labels -100 on padding.
#pragma once

#include <ATen/core/Tensor.h>

#include <span>

#include "jobs/data/token_file.h"

namespace tallrec {

struct Batch {
  at::Tensor input_ids;       // [B, T] int64
  at::Tensor attention_mask;  // [B, T] int64, 1 on real tokens
  at::Tensor labels;          // [B, T] int64, kIgnoreIndex on padding (and masked prompt)

  Batch to(const at::Device& device) const {
    return {input_ids.to(device), attention_mask.to(device), labels.to(device)};
  }
};

Batch collate_training_batch(const TokenizedDataset& data, std::span<const size_t> records,
                             int64_t pad_to_multiple_of = 8);

}  // namespace tallrec
