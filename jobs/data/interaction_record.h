// The interactions behind one prompt record: the user, the items of the history with their
// ratings, the target item, its rating and the label. `tallrec data prepare` writes them beside
// the prompts, record i of X.interactions.jsonl behind record i of X.json, from the same
// sampling, so that a few-shot subset of one is the same records as of the other (Table 1's
// sequential baselines train on these, the LLM on the prompts).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tallrec {

// How many earlier items a record's history holds, at most: TALLRec's seq_len (movies) and its
// [:10] (books). The preparers draw this many; a baseline's inputs keep this many.
inline constexpr size_t kTallrecHistoryLength = 10;

struct InteractionRecord {
  std::string user;
  std::vector<std::string> history;     // item ids in the order the prompt's history was drawn:
                                        // MovieLens by time, oldest first; Book-Crossing in
                                        // TALLRec's per-user shuffled order
  std::vector<double> history_ratings;  // the raw ratings (MovieLens 1-5, Book-Crossing 0-10)
  std::string target;
  double target_rating = 0;
  int label = 0;  // 1 like, 0 dislike, as the prompt's "Yes."/"No."
};

// X.json -> X.interactions.jsonl (any other name gets ".interactions.jsonl" appended).
std::filesystem::path interactions_path_for(const std::filesystem::path& prompt_file);

// One JSON object per line, in record order:
//   {"user":"196","history":["242",...],"history_ratings":[3,...],"target":"302",
//    "target_rating":4,"label":1}
std::string interaction_records_to_jsonl(const std::vector<InteractionRecord>& records);
void write_interaction_records(const std::filesystem::path& path,
                               const std::vector<InteractionRecord>& records);

// Parses such a file. InputError names the origin and line: malformed JSON, a missing or
// mistyped field, history and history_ratings of different lengths, a label other than 0 or 1.
std::vector<InteractionRecord> parse_interaction_records(const std::string& text,
                                                         const std::string& origin);
std::vector<InteractionRecord> read_interaction_records(const std::filesystem::path& path);

// The interactions behind `prompt_file`, checked to be its records: the file beside it exists and
// has one record per prompt with the prompt's label (`prompt_labels`: answer_label of each). A
// stale file beside newer prompts would train a baseline on other records than the LLM's, and
// the few-shot draw depends on the count. InputError naming the file otherwise.
std::vector<InteractionRecord> read_interactions_behind(const std::string& prompt_file,
                                                        const std::vector<int>& prompt_labels);

}  // namespace tallrec
