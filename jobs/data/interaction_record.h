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

}  // namespace tallrec
