#include "jobs/data/token_file.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/tokenize_records.h"
#include "test_paths.h"

namespace tallrec {
namespace {

const PromptRecord kRecord{"Say it.", "User Preference: \"A\"", "Yes."};

TEST(TokenFile, RoundTripTruncationEosAndMasking) {
  test::ScratchDir dir;
  Tokenizer tok(test::tokenizer_model());
  std::vector<PromptRecord> records{kRecord, {"Say it.", "", "No."}, {"x", "y", "Maybe."}};
  TokenizeOptions options;
  options.cutoff_len = 40;
  options.train_on_inputs = false;
  TokenizedArrays arrays;
  tokenize_records(tok, records, {2, 0, 1}, options, arrays);
  TokenizedMeta meta;
  meta.vocab_size = tok.vocab_size();
  meta.cutoff_len = 40;
  meta.train_on_inputs = false;
  write_tokenized(dir / "t", meta, arrays);

  TokenizedDataset data(dir / "t");
  data.verify_checksum();
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data.source_index(0), 2u);
  EXPECT_EQ(data.label(0), -1);
  EXPECT_EQ(data.label(1), 1);
  EXPECT_EQ(data.label(2), 0);
  for (size_t i = 0; i < 3; ++i) {
    auto ids = data.train_ids(i);
    EXPECT_EQ(ids.front(), tok.bos_id());
    EXPECT_LE(ids.size(), 40u);
    // Long prompts are cut at the cutoff without EOS; short ones end in EOS.
    if (ids.size() < 40) {
      EXPECT_EQ(ids.back(), tok.eos_id());
    }
    auto labels = data.training_labels(i);
    size_t masked = std::count(labels.begin(), labels.end(), kIgnoreIndex);
    EXPECT_EQ(masked, std::min<size_t>(data.prompt_length(i), ids.size()));
    EXPECT_EQ(data.eval_ids(i).front(), tok.bos_id());
  }
  EXPECT_GT(data.eval_ids(1).size(), 40u) << "evaluation prompts are not truncated";
}

TEST(TokenFile, CorruptFilesAreRefusedWithTheirName) {
  test::ScratchDir dir;
  TokenizedArrays arrays;
  arrays.train_ids = {1, 5, 2};
  arrays.train_offsets = {0, 3};
  arrays.eval_ids = {1, 5};
  arrays.eval_offsets = {0, 2};
  arrays.prompt_lengths = {2};
  arrays.labels = {1};
  arrays.source_index = {0};
  TokenizedMeta meta;
  meta.vocab_size = 6;
  write_tokenized(dir / "t", meta, arrays);
  EXPECT_NO_THROW(TokenizedDataset(dir / "t"));

  std::string bin = read_file(dir / "t" / "tokens.bin");
  std::string bad = bin;
  bad[64 + 16 + 16 + 4] = 9;  // second training id -> 9, outside a vocabulary of 6
  write_file_atomically(dir / "t" / "tokens.bin", bad);
  EXPECT_THROW(
      {
        try {
          TokenizedDataset d(dir / "t");
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("tokens.bin: train id 9 outside the vocabulary"),
                    std::string::npos);
          throw;
        }
      },
      InputError);
  write_file_atomically(dir / "t" / "tokens.bin", bin.substr(0, bin.size() - 8));
  EXPECT_THROW(TokenizedDataset(dir / "t"), InputError);
  write_file_atomically(dir / "t" / "meta.json", "{");
  EXPECT_THROW(TokenizedDataset(dir / "t"), InputError);
}

}  // namespace
}  // namespace tallrec
