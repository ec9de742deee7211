// A prompt record in TALLRec's format: {"instruction", "input", "output"}, where output is
// "Yes." or "No." for rec-tuning data. Files of these records (a JSON array) are both what
// `tallrec data prepare` writes and a dataset source a user may bring.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tallrec {

struct PromptRecord {
  std::string instruction;
  std::string input;
  std::string output;
};

// The label TALLRec derives from a record: 1 if output is exactly "Yes.", 0 if "No.",
// -1 for anything else (TALLRec's evaluate.py counts every non-"Yes." as 0; see docs/dev/data.md).
int answer_label(const PromptRecord& record);

// Parses a JSON array of records. Throws InputError naming the file and line (malformed JSON,
// invalid UTF-8) or the record index and field (missing key, non-string value).
std::vector<PromptRecord> read_prompt_records(const std::filesystem::path& path);
std::vector<PromptRecord> parse_prompt_records(const std::string& text, const std::string& origin);

// Writes the array as TALLRec did (Python json.dump(indent=4)), atomically.
std::string prompt_records_to_json(const std::vector<PromptRecord>& records);
void write_prompt_records(const std::filesystem::path& path,
                          const std::vector<PromptRecord>& records);

}  // namespace tallrec
