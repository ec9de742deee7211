#include "jobs/data/baseline_inputs.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {

InteractionEncoder::InteractionEncoder(
    const std::vector<const std::vector<InteractionRecord>*>& vocabulary, int64_t max_history)
    : max_history_(max_history) {
  if (max_history < 1) throw InputError("max_history must be positive");
  auto add = [](std::map<std::string, int64_t>& ids, const std::string& key) {
    ids.try_emplace(key, int64_t(ids.size()) + 1);
  };
  for (const auto* records : vocabulary) {
    for (const auto& r : *records) {
      add(user_ids_, r.user);
      for (const auto& item : r.history) add(item_ids_, item);
      add(item_ids_, r.target);
    }
  }
}

EncodedSplit InteractionEncoder::encode(const std::vector<InteractionRecord>& records,
                                        const std::string& origin) const {
  auto id_of = [&](const std::map<std::string, int64_t>& ids, const std::string& key,
                   const char* what, size_t index) {
    auto it = ids.find(key);
    if (it == ids.end())
      throw InputError(origin + ": record " + std::to_string(index) + ": " + what + " \"" +
                       printable_utf8(key) + "\" is not in the domain's interaction files");
    return it->second;
  };
  EncodedSplit out;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (r.history.empty())
      throw InputError(origin + ": record " + std::to_string(i) + " has an empty history");
    out.user.push_back(id_of(user_ids_, r.user, "user", i));
    const size_t keep = std::min(r.history.size(), size_t(max_history_));
    for (size_t k = r.history.size() - keep; k < r.history.size(); ++k)
      out.history.push_back(id_of(item_ids_, r.history[k], "item", i));
    for (size_t k = keep; k < size_t(max_history_); ++k) out.history.push_back(0);
    out.history_length.push_back(int64_t(keep));
    out.target.push_back(id_of(item_ids_, r.target, "item", i));
    out.label.push_back(r.label);
  }
  return out;
}

namespace {

nlohmann::json split_json(const EncodedSplit& s, int64_t max_history) {
  nlohmann::json history = nlohmann::json::array();
  for (int64_t i = 0; i < s.rows(); ++i)
    history.push_back(std::vector<int64_t>(s.history.begin() + i * max_history,
                                           s.history.begin() + (i + 1) * max_history));
  return {{"user", s.user},
          {"history", history},
          {"history_length", s.history_length},
          {"target", s.target},
          {"label", s.label}};
}

EncodedSplit parse_split(const nlohmann::json& j, const BaselineInputs& in,
                         const std::string& where) {
  EncodedSplit s;
  std::vector<std::vector<int64_t>> history;
  auto get = [&](const char* key, auto& out) {
    if (!j.is_object() || !j.contains(key) || !get_exact(j[key], out))
      throw InputError(where + ": \"" + key + "\" must be a list of integers");
  };
  get("user", s.user);
  get("history", history);
  get("history_length", s.history_length);
  get("target", s.target);
  get("label", s.label);
  const size_t n = s.user.size();
  if (history.size() != n || s.history_length.size() != n || s.target.size() != n ||
      s.label.size() != n)
    throw InputError(where + ": the lists have different lengths");
  if (n == 0) throw InputError(where + ": no records");
  for (size_t i = 0; i < n; ++i) {
    const std::string row = where + ": record " + std::to_string(i);
    if (s.user[i] < 1 || s.user[i] >= in.users) throw InputError(row + ": user id out of range");
    if (s.target[i] < 1 || s.target[i] >= in.items)
      throw InputError(row + ": target id out of range");
    if (s.label[i] != 0 && s.label[i] != 1) throw InputError(row + ": label must be 0 or 1");
    if (int64_t(history[i].size()) != in.max_history)
      throw InputError(row + ": history must have max_history ids");
    if (s.history_length[i] < 1 || s.history_length[i] > in.max_history)
      throw InputError(row + ": history_length out of range");
    for (int64_t k = 0; k < in.max_history; ++k) {
      const int64_t id = history[i][size_t(k)];
      const bool padding = k >= s.history_length[i];
      if (padding ? id != 0 : (id < 1 || id >= in.items))
        throw InputError(row + ": history id " + std::to_string(id) + " at " + std::to_string(k) +
                         (padding ? " must be 0 (padding)" : " out of range"));
      s.history.push_back(id);
    }
  }
  return s;
}

}  // namespace

nlohmann::json baseline_inputs_json(const BaselineInputs& in) {
  nlohmann::json tests = nlohmann::json::object();
  for (const auto& [name, split] : in.tests) tests[name] = split_json(split, in.max_history);
  return {{"items", in.items},
          {"users", in.users},
          {"max_history", in.max_history},
          {"train", split_json(in.train, in.max_history)},
          {"valid", split_json(in.valid, in.max_history)},
          {"tests", tests}};
}

BaselineInputs read_baseline_inputs(const std::filesystem::path& path) {
  const std::string origin = path.string();
  const nlohmann::json j = parse_json_from_outside(read_file(path), origin, 8);
  BaselineInputs in;
  for (auto [key, member] : {std::pair{"items", &in.items}, std::pair{"users", &in.users},
                             std::pair{"max_history", &in.max_history}}) {
    if (!j.is_object() || !j.contains(key) || !get_exact(j[key], *member) || *member < 1)
      throw InputError(origin + ": \"" + key + "\" must be a positive integer");
  }
  if (in.max_history > 1024) throw InputError(origin + ": \"max_history\" is above 1024");
  in.train = parse_split(j.value("train", nlohmann::json()), in, origin + ": train");
  in.valid = parse_split(j.value("valid", nlohmann::json()), in, origin + ": valid");
  if (!j.contains("tests") || !j["tests"].is_object() || j["tests"].empty())
    throw InputError(origin + ": \"tests\" must name at least one test set");
  for (const auto& [name, split] : j["tests"].items())
    in.tests[name] = parse_split(split, in, origin + ": tests." + name);
  return in;
}

}  // namespace tallrec
