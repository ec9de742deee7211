// A baseline run's data as ids: what `tallrec-train` trains a sequential recommender on
// (common/baseline_spec.h). The worker builds it from the interaction files beside the run's
// prompt files (jobs/data/interaction_record.h), with the same few-shot subset of the same
// records as the LLM's prompts (jobs/data/few_shot.h), and writes it as one JSON file:
//   {"items": N, "users": U, "max_history": L,
//    "train": SPLIT, "valid": SPLIT, "tests": {"movie": SPLIT, ...}}
//   SPLIT = {"user": [..], "history": [[..L ids..], ..], "history_length": [..],
//            "target": [..], "label": [..]}
// Items and users are numbered from 1 in order of first appearance over the domain's whole train,
// valid and test files (0 pads, as in RecBole), so every run of a domain, whatever its sample or
// seed, numbers them alike. A history keeps its last L items, oldest first, right-padded with 0.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobs/data/interaction_record.h"

namespace tallrec {

struct EncodedSplit {
  std::vector<int64_t> user, history, history_length, target, label;  // history: rows x L
  int64_t rows() const { return int64_t(user.size()); }
};

struct BaselineInputs {
  int64_t items = 0, users = 0, max_history = 0;  // counts including the padding id 0
  EncodedSplit train, valid;
  std::map<std::string, EncodedSplit> tests;
};

// Numbers users and items over `vocabulary` (all of a domain's records, in order), then encodes
// each split's records (already subset and ordered by the caller).
class InteractionEncoder {
 public:
  InteractionEncoder(const std::vector<const std::vector<InteractionRecord>*>& vocabulary,
                     int64_t max_history);
  // InputError naming `origin` for a user or item not in the vocabulary.
  EncodedSplit encode(const std::vector<InteractionRecord>& records,
                      const std::string& origin) const;
  int64_t items() const { return int64_t(item_ids_.size()) + 1; }
  int64_t users() const { return int64_t(user_ids_.size()) + 1; }
  int64_t max_history() const { return max_history_; }

 private:
  std::map<std::string, int64_t> item_ids_, user_ids_;
  int64_t max_history_;
};

nlohmann::json baseline_inputs_json(const BaselineInputs& inputs);
// Parses and checks the file (ids within the counts, histories of L ids, lengths in [1, L],
// labels 0/1); InputError names the file and the split.
BaselineInputs read_baseline_inputs(const std::filesystem::path& path);

}  // namespace tallrec
