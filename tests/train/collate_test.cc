#include "jobs/train/collate.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "jobs/data/token_file.h"

namespace tallrec {
namespace {

// Two sequences of lengths 3 and 10: left-padded to 16 (longest rounded up to 8), as
// DataCollatorForSeq2Seq(pad_to_multiple_of=8) does with padding_side="left".
TEST(Collate, LeftPadsToAMultipleOfEight) {
  auto dir =
      std::filesystem::temp_directory_path() / ("tallrec-collate-" + std::to_string(::getpid()));
  TokenizedArrays a;
  a.train_ids = {1, 7, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 2};
  a.train_offsets = {0, 3, 13};
  a.eval_ids = {1, 1};
  a.eval_offsets = {0, 1, 2};
  a.prompt_lengths = {2, 4};
  a.labels = {1, 0};
  a.source_index = {0, 1};
  TokenizedMeta meta;
  meta.vocab_size = 32;
  meta.train_on_inputs = false;
  write_tokenized(dir, meta, a);
  TokenizedDataset data(dir);
  const size_t rows[] = {0, 1};
  Batch b = collate_training_batch(data, rows);
  ASSERT_EQ(b.input_ids.sizes(), (at::IntArrayRef{2, 16}));
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<int64_t, 2>();
  auto labels = b.labels.accessor<int64_t, 2>();
  for (int k = 0; k < 13; ++k) {
    EXPECT_EQ(ids[0][k], 0);
    EXPECT_EQ(mask[0][k], 0);
    EXPECT_EQ(labels[0][k], kIgnoreIndex);
  }
  EXPECT_EQ(ids[0][13], 1);
  EXPECT_EQ(ids[0][15], 2);
  EXPECT_EQ(labels[0][14], kIgnoreIndex);  // prompt tokens masked (train_on_inputs = false)
  EXPECT_EQ(labels[0][15], 2);
  EXPECT_EQ(mask[1][5], 0);
  EXPECT_EQ(mask[1][6], 1);
  EXPECT_EQ(labels[1][9], kIgnoreIndex);
  EXPECT_EQ(labels[1][10], 6);  // first unmasked token: the 5th of {1, 3, 4, 5, 6, ...}
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tallrec
