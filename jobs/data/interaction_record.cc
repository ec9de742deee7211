#include "jobs/data/interaction_record.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {
namespace fs = std::filesystem;

fs::path interactions_path_for(const fs::path& prompt_file) {
  fs::path out = prompt_file;
  if (out.extension() == ".json") out.replace_extension();
  out += ".interactions.jsonl";
  return out;
}

namespace {

// A rating as its file had it: 4, not 4.0, for the integers both datasets use.
nlohmann::ordered_json rating_json(double r) {
  if (r == std::floor(r) && std::fabs(r) < 1e15) return int64_t(r);
  return r;
}

}  // namespace

std::string interaction_records_to_jsonl(const std::vector<InteractionRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    nlohmann::ordered_json ratings = nlohmann::ordered_json::array();
    for (double h : r.history_ratings) ratings.push_back(rating_json(h));
    nlohmann::ordered_json line = {{"user", r.user},
                                   {"history", r.history},
                                   {"history_ratings", ratings},
                                   {"target", r.target},
                                   {"target_rating", rating_json(r.target_rating)},
                                   {"label", r.label}};
    out += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

void write_interaction_records(const fs::path& path,
                               const std::vector<InteractionRecord>& records) {
  write_file_atomically(path, interaction_records_to_jsonl(records));
}

namespace {

template <class T>
T field(const nlohmann::json& object, const char* name, const std::string& origin, size_t line,
        const char* must_be) {
  T value{};
  auto it = object.find(name);
  if (it == object.end()) throw input_error_at(origin, line, std::string("no \"") + name + "\"");
  if (!get_exact(*it, value))
    throw input_error_at(origin, line, std::string("\"") + name + "\" must be " + must_be);
  return value;
}

}  // namespace

std::vector<InteractionRecord> parse_interaction_records(const std::string& text,
                                                         const std::string& origin) {
  std::vector<InteractionRecord> records;
  size_t start = 0, line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string_view row(text.data() + start, end - start);
    start = end + 1;
    if (row.empty()) continue;
    const nlohmann::json j = parse_json_from_outside(row, origin + ":" + std::to_string(line), 4);
    if (!j.is_object()) throw input_error_at(origin, line, "expected a JSON object");
    InteractionRecord r;
    r.user = field<std::string>(j, "user", origin, line, "a string");
    r.history = field<std::vector<std::string>>(j, "history", origin, line, "a list of strings");
    r.history_ratings =
        field<std::vector<double>>(j, "history_ratings", origin, line, "a list of numbers");
    r.target = field<std::string>(j, "target", origin, line, "a string");
    r.target_rating = field<double>(j, "target_rating", origin, line, "a number");
    r.label = field<int>(j, "label", origin, line, "0 or 1");
    if (r.label != 0 && r.label != 1)
      throw input_error_at(origin, line, "\"label\" must be 0 or 1");
    if (r.history.size() != r.history_ratings.size()) {
      throw input_error_at(origin, line,
                           "\"history\" has " + std::to_string(r.history.size()) +
                               " items but \"history_ratings\" " +
                               std::to_string(r.history_ratings.size()));
    }
    records.push_back(std::move(r));
  }
  return records;
}

std::vector<InteractionRecord> read_interaction_records(const fs::path& path) {
  return parse_interaction_records(read_file(path), path.string());
}

std::vector<InteractionRecord> read_interactions_behind(const std::string& prompt_file,
                                                        const std::vector<int>& prompt_labels) {
  const fs::path path = interactions_path_for(prompt_file);
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw InputError(path.string() + ": no interaction file beside " + prompt_file +
                     " (a baseline trains on the interactions behind the prompts; `tallrec data "
                     "prepare` writes them)");
  std::vector<InteractionRecord> interactions = read_interaction_records(path);
  if (interactions.size() != prompt_labels.size())
    throw InputError(path.string() + ": " + std::to_string(interactions.size()) + " records, but " +
                     prompt_file + " has " + std::to_string(prompt_labels.size()) +
                     " (prepare both again with `tallrec data prepare`)");
  for (size_t i = 0; i < prompt_labels.size(); ++i)
    if (interactions[i].label != prompt_labels[i])
      throw InputError(path.string() + ": record " + std::to_string(i) +
                       "'s label differs from its prompt's answer in " + prompt_file);
  return interactions;
}

}  // namespace tallrec
