#include "jobs/data/tokenizer_json.h"

#include <algorithm>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "jobs/data/bpe_model.h"
#include "jobs/data/text_pipeline.h"

namespace tallrec {
namespace {

using json = nlohmann::json;

constexpr uintmax_t kMaxTokenizerBytes = uintmax_t(256) << 20;

struct AddedToken {
  std::string content;
  int32_t id;
};

json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(path.string() + ": cannot read (" + ec.message() + ")");
  if (size > kMaxTokenizerBytes)
    throw InputError(path.string() + ": " + std::to_string(size) +
                     " bytes, more than a tokenizer file may have (256 MiB)");
  return parse_json_from_outside(read_file(path), path.string());
}

// A special token's name from tokenizer_config.json: "text" or {"content": "text", ...}.
std::string token_name(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return "";
}

}  // namespace

struct JsonTokenizer::Impl {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::vector<AddedToken> added;                               // longest first
  std::map<unsigned char, std::vector<size_t>> by_first_byte;  // indices into `added`
  std::map<int32_t, std::string> added_by_id;

  // The added token that starts at `at`, longest first, or nullptr.
  const AddedToken* added_at(std::string_view text, size_t at) const {
    auto it = by_first_byte.find(static_cast<unsigned char>(text[at]));
    if (it == by_first_byte.end()) return nullptr;
    for (size_t i : it->second)
      if (text.compare(at, added[i].content.size(), added[i].content) == 0) return &added[i];
    return nullptr;
  }

  void encode_segment(std::string text, bool first, std::vector<int32_t>& out) const {
    if (normalizer) normalizer->apply(text);
    std::vector<TextPiece> pieces = {{std::move(text), first}};
    if (pre_tokenizer) pre_tokenizer->split(pieces);
    for (const auto& p : pieces)
      if (!p.text.empty()) model->encode(p.text, out);
  }
};

JsonTokenizer::JsonTokenizer(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  const std::string where = path.string();
  const json doc = read_json_file(path);
  if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object())
    throw InputError(where + ": not an HF tokenizer.json (no \"model\" object)");
  impl_->model = std::make_unique<BpeModel>(doc["model"], where + ": model");
  impl_->normalizer =
      Normalizer::from_json(doc.value("normalizer", json()), where + ": normalizer");
  impl_->pre_tokenizer =
      PreTokenizer::from_json(doc.value("pre_tokenizer", json()), where + ": pre_tokenizer");
  vocab_size_ = impl_->model->max_id() + 1;

  const json added = doc.value("added_tokens", json::array());
  if (!added.is_array()) throw InputError(where + ": \"added_tokens\" must be a list");
  for (const auto& t : added) {
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
        !t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 ||
        t["id"].get<int64_t>() >= (1 << 24) || t["content"].get<std::string>().empty())
      throw InputError(where + ": each added token needs a non-empty \"content\" and an \"id\"");
    const std::string content = t["content"].get<std::string>();
    for (const char* flag : {"lstrip", "rstrip", "single_word"})
      if (t.value(flag, false))
        throw InputError(where + ": added token \"" + content + "\": " + flag +
                         " is not supported");
    if (t.value("normalized", false) && impl_->normalizer)
      throw InputError(where + ": added token \"" + content +
                       "\": normalized added tokens under a normalizer are not supported");
    const auto id = t["id"].get<int32_t>();
    impl_->added.push_back({content, id});
    impl_->added_by_id[id] = content;
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  std::stable_sort(
      impl_->added.begin(), impl_->added.end(),
      [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (size_t i = 0; i < impl_->added.size(); ++i)
    impl_->by_first_byte[static_cast<unsigned char>(impl_->added[i].content[0])].push_back(i);

  // The post-processor: only what puts a token before the text is supported.
  std::vector<json> processors = {doc.value("post_processor", json())};
  for (size_t i = 0; i < processors.size(); ++i) {
    const json p = processors[i];
    if (p.is_null()) continue;
    const std::string type = p.is_object() ? p.value("type", std::string()) : "";
    if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
      for (const auto& q : p["processors"]) processors.push_back(q);
    } else if (type == "ByteLevel") {
      // offsets only
    } else if (type == "TemplateProcessing") {
      const json single = p.value("single", json::array());
      for (size_t k = 0; k < single.size(); ++k) {
        const json& item = single[k];
        if (item.contains("Sequence")) continue;
        const std::string name =
            item.contains("SpecialToken") ? item["SpecialToken"].value("id", std::string()) : "";
        if (k != 0 || name.empty())
          throw InputError(where + ": post_processor: a template that adds \"" + name +
                           "\" after the text is not supported (only a token before it, BOS)");
        const json ids = p.value("special_tokens", json::object())
                             .value(name, json::object())
                             .value("ids", json::array());
        if (ids.size() != 1 || !ids[0].is_number_integer())
          throw InputError(where + ": post_processor: special token \"" + name +
                           "\" must have exactly one id");
        bos_ = ids[0].get<int32_t>();
      }
    } else {
      throw InputError(where + ": post_processor \"" + type +
                       "\" is not supported (TemplateProcessing, ByteLevel, Sequence)");
    }
  }

  // EOS, as HF's AutoTokenizer sets eos_token_id from the files beside tokenizer.json.
  const auto folder = path.parent_path();
  if (std::filesystem::exists(folder / "tokenizer_config.json")) {
    const json config = read_json_file(folder / "tokenizer_config.json");
    const std::string eos = config.is_object() ? token_name(config.value("eos_token", json())) : "";
    if (!eos.empty()) {
      eos_ = token_id(eos);
      if (eos_ < 0)
        throw InputError((folder / "tokenizer_config.json").string() + ": eos_token \"" + eos +
                         "\" is not a token of " + where);
    }
  }
  if (eos_ < 0 && std::filesystem::exists(folder / "generation_config.json")) {
    const json g = read_json_file(folder / "generation_config.json");
    json e = g.is_object() ? g.value("eos_token_id", json()) : json();
    if (e.is_array() && !e.empty()) e = e[0];
    if (e.is_number_integer()) eos_ = e.get<int32_t>();
  }
}

JsonTokenizer::~JsonTokenizer() = default;

int32_t JsonTokenizer::token_id(const std::string& token) const {
  for (const auto& a : impl_->added)
    if (a.content == token) return a.id;
  return impl_->model->id(token).value_or(-1);
}

std::string JsonTokenizer::piece(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() ? it->second : impl_->model->token(id);
}

std::vector<int32_t> JsonTokenizer::encode(std::string_view text) const {
  const std::string owned(text);
  require_utf8(owned, "tokenizer input");
  std::vector<int32_t> out;
  size_t start = 0;  // of the current segment
  bool first = true;
  for (size_t at = 0; at < text.size();) {
    const AddedToken* token = impl_->added.empty() ? nullptr : impl_->added_at(text, at);
    if (!token) {
      ++at;
      continue;
    }
    if (at > start) impl_->encode_segment(owned.substr(start, at - start), first, out);
    out.push_back(token->id);
    at += token->content.size();
    start = at;
    first = false;
  }
  if (start < text.size()) impl_->encode_segment(owned.substr(start), first, out);
  return out;
}

}  // namespace tallrec
