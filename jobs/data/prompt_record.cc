#include "jobs/data/prompt_record.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/python_json.h"
#include "common/text_encoding.h"

namespace tallrec {

int answer_label(const PromptRecord& record) {
  if (record.output == "Yes.") return 1;
  if (record.output == "No.") return 0;
  return -1;
}

std::vector<PromptRecord> read_prompt_records(const std::filesystem::path& path) {
  return parse_prompt_records(read_file(path), path.string());
}

std::vector<PromptRecord> parse_prompt_records(const std::string& text, const std::string& origin) {
  auto line_of = [&](size_t offset) {
    offset = std::min(offset, text.size());
    return size_t(1 + std::count(text.begin(), text.begin() + std::ptrdiff_t(offset), '\n'));
  };
  if (size_t bad = find_invalid_utf8(text); bad != std::string::npos) {
    throw input_error_at(origin, line_of(bad),
                         "bad encoding: byte " + std::to_string(bad) +
                             " is not valid UTF-8 "
                             "(prompt JSON files must be UTF-8)");
  }
  if (size_t deep = find_json_too_deep(text); deep != std::string::npos)
    throw input_error_at(origin, line_of(deep),
                         "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw input_error_at(origin, line_of(e.byte > 0 ? e.byte - 1 : 0),
                         std::string("malformed JSON: ") + e.what());
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number such as 1e999
    throw InputError(origin + ": malformed JSON: " + e.what());
  }
  if (!doc.is_array()) throw InputError(origin + ": expected a JSON array of prompt records");
  std::vector<PromptRecord> records;
  records.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    auto where = origin + ": record " + std::to_string(i);
    if (!item.is_object()) throw InputError(where + ": expected an object");
    auto field = [&](const char* key) -> std::string {
      auto it = item.find(key);
      if (it == item.end()) throw InputError(where + ": missing field \"" + key + "\"");
      if (!it->is_string()) throw InputError(where + ": field \"" + key + "\" must be a string");
      return it->get<std::string>();
    };
    records.push_back({field("instruction"), field("input"), field("output")});
  }
  return records;
}

std::string prompt_records_to_json(const std::vector<PromptRecord>& records) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::array();
  for (const auto& r : records) {
    doc.push_back({{"instruction", r.instruction}, {"input", r.input}, {"output", r.output}});
  }
  return python_json_dumps(doc, 4);
}

void write_prompt_records(const std::filesystem::path& path,
                          const std::vector<PromptRecord>& records) {
  write_file_atomically(path, prompt_records_to_json(records));
}

}  // namespace tallrec
