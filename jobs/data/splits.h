// The three splits a `data prepare` produces, and how they are written to disk.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "jobs/data/interaction_record.h"
#include "jobs/data/prompt_record.h"

namespace tallrec {

struct Splits {
  std::vector<PromptRecord> train, valid, test;
  // The interactions behind each record, index for index (empty when a source has none).
  struct {
    std::vector<InteractionRecord> train, valid, test;
  } interactions;
};

// Writes train.json, valid.json and test.json into `out_dir`, and beside each its
// .interactions.jsonl when the splits have interactions, as one unit: they are staged in a
// temporary directory and moved into place together, so a failure leaves nothing behind.
// Files in an existing `out_dir` other than these are kept.
void write_splits(const std::filesystem::path& out_dir, const Splits& splits);

// One line per split: count and share of "Yes." answers, e.g. "train  8000 records  yes 0.5571".
std::string describe_splits(const Splits& splits);

}  // namespace tallrec
