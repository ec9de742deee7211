// Tokenized datasets (jobs/data/token_file.h): meta.json and tokens.bin as a trainer is handed
// them. InputError only; every record of a dataset that opens can be read (ASan checks the spans).
#include <cstdint>

#include "common/error.h"
#include "jobs/data/token_file.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = tallrec::fuzz::scratch_dir() / "tokens";
  std::filesystem::create_directories(dir);
  const auto [meta, tokens] = tallrec::fuzz::split_in_two(data, size);
  tallrec::fuzz::write_bytes(dir / "meta.json", meta);
  tallrec::fuzz::write_bytes(dir / "tokens.bin", tokens);
  try {
    tallrec::TokenizedDataset set(dir);
    int64_t sum = 0;
    for (size_t i = 0; i < set.size(); ++i) {
      for (int32_t id : set.train_ids(i)) sum += id;
      for (int32_t id : set.eval_ids(i)) sum += id;
      sum += set.prompt_length(i) + set.label(i) + set.source_index(i) +
             int64_t(set.training_labels(i).size());
    }
    set.verify_checksum();
    (void)sum;
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
