#include "jobs/data/text_pipeline.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <array>
#include <cstdlib>

#include "common/error.h"

namespace tallrec {
namespace {

using json = nlohmann::json;

// A Unicode regular expression as HF tokenizers' Oniguruma reads the split patterns: UTF-8,
// Unicode properties (\p{L}, \p{N}) and Unicode \s. PCRE2, JIT-compiled when the JIT is there.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) : where_(where), pattern_(pattern) {
    int code = 0;
    PCRE2_SIZE at = 0;
    re_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP, &code, &at, nullptr);
    if (!re_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(code, message, sizeof message);
      throw InputError(where + ": regex \"" + pattern + "\" does not compile at offset " +
                       std::to_string(at) + ": " + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(re_, PCRE2_JIT_COMPLETE);  // an interpreter fallback when it fails
  }
  ~Regex() { pcre2_code_free(re_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // [begin, end) of each non-empty match, left to right, not overlapping. `text` is valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re_, nullptr);
    size_t from = 0;
    while (from <= text.size()) {
      const int rc = pcre2_match(re_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), from,
                                 PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {  // a backtracking or memory limit: refused, never a partial split
        pcre2_match_data_free(md);
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw InputError(where_ + ": regex \"" + pattern_ + "\" gave up on a text of " +
                         std::to_string(text.size()) + " bytes at byte " + std::to_string(from) +
                         ": " + reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* v = pcre2_get_ovector_pointer(md);
      if (v[1] > v[0]) {
        out.push_back({v[0], v[1]});
        from = v[1];
      } else {  // an empty match: step over one character
        from = v[0] + 1;
        while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80)
          ++from;
      }
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  std::string where_, pattern_;
  pcre2_code* re_ = nullptr;
};

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext };

SplitBehavior parse_behavior(const json& j, const std::string& where) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  throw InputError(where + ": split behavior \"" + b +
                   "\" is not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext)");
}

// Cuts `piece` at the matches of `re` as HF's NormalizedString::split does with `behavior`.
void split_at(const Regex& re, SplitBehavior behavior, const TextPiece& piece,
              std::vector<TextPiece>& out) {
  const std::string& s = piece.text;
  std::vector<std::string> parts;
  size_t last = 0;
  for (const auto& [b, e] : re.find_all(s)) {
    const std::string gap = s.substr(last, b - last), match = s.substr(b, e - b);
    switch (behavior) {
      case SplitBehavior::kIsolated:
        parts.push_back(gap);
        parts.push_back(match);
        break;
      case SplitBehavior::kRemoved:
        parts.push_back(gap);
        break;
      case SplitBehavior::kMergedWithPrevious:
        parts.push_back(gap + match);
        break;
      case SplitBehavior::kMergedWithNext:
        parts.push_back(gap);
        parts.push_back(match);  // the next gap joins it below
        break;
    }
    last = e;
  }
  std::string tail = s.substr(last);
  if (behavior == SplitBehavior::kMergedWithNext && !parts.empty()) {
    // parts alternate gap, match: each match takes the gap after it.
    std::vector<std::string> merged = {parts[0]};
    for (size_t i = 1; i < parts.size(); i += 2)
      merged.push_back(parts[i] + (i + 1 < parts.size() ? parts[i + 1] : tail));
    parts = std::move(merged);
    tail.clear();
  }
  parts.push_back(tail);
  bool first = piece.first;
  for (auto& p : parts) {
    if (p.empty()) continue;
    out.push_back({std::move(p), first});
    first = false;
  }
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw InputError(where + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

bool bool_field(const json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw InputError(where + ": \"" + key + "\" must be true or false");
  return j[key].get<bool>();
}

// A {"String": s} or {"Regex": r} pattern as a Regex (a string is matched literally).
std::unique_ptr<Regex> pattern_field(const json& j, const std::string& where) {
  const json p = j.value("pattern", json());
  if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
    return std::make_unique<Regex>(p["Regex"].get<std::string>(), where);
  if (p.is_object() && p.contains("String") && p["String"].is_string())
    return std::make_unique<Regex>("\\Q" + p["String"].get<std::string>() + "\\E", where);
  throw InputError(where + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
}

// ---- normalizers ----

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void apply(std::string& text) const override {
    for (const auto& p : parts_) p->apply(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void apply(std::string& text) const override {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), text.size(),
                                &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options_));
    if (n < 0) throw InputError(std::string("unicode normalization: ") + utf8proc_errmsg(n));
    text.assign(reinterpret_cast<char*>(out), size_t(n));
    std::free(out);
  }

 private:
  int options_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void apply(std::string& text) const override {
    std::string out;
    utf8proc_int32_t c;
    for (size_t at = 0; at < text.size();) {
      const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + at,
                                      utf8proc_ssize_t(text.size() - at), &c);
      utf8proc_uint8_t buf[4];
      out.append(reinterpret_cast<char*>(buf),
                 size_t(utf8proc_encode_char(utf8proc_tolower(c), buf)));
      at += size_t(n);
    }
    text = std::move(out);
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

// Every match of `re` in `text` replaced by `content`.
void replace_all(const Regex& re, const std::string& content, std::string& text) {
  std::string out;
  size_t last = 0;
  for (const auto& [b, e] : re.find_all(text)) {
    out.append(text, last, b - last);
    out += content;
    last = e;
  }
  out.append(text, last);
  text = std::move(out);
}

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> re, std::string content)
      : re_(std::move(re)), content_(std::move(content)) {}
  void apply(std::string& text) const override { replace_all(*re_, content_, text); }

 private:
  std::unique_ptr<Regex> re_;
  std::string content_;
};

// ---- pre-tokenizers ----

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void split(std::vector<TextPiece>& pieces) const override {
    for (const auto& p : parts_) p->split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class RegexSplit : public PreTokenizer {
 public:
  RegexSplit(std::unique_ptr<Regex> re, SplitBehavior behavior)
      : re_(std::move(re)), behavior_(behavior) {}
  void split(std::vector<TextPiece>& pieces) const override {
    std::vector<TextPiece> out;
    for (const auto& p : pieces) split_at(*re_, behavior_, p, out);
    pieces = std::move(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  SplitBehavior behavior_;
};

// GPT-2's split pattern, which ByteLevel applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space),
        re_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, where) : nullptr) {}
  void split(std::vector<TextPiece>& pieces) const override {
    std::vector<TextPiece> out;
    for (auto p : pieces) {
      if (add_prefix_space_ && p.text.rfind(' ', 0) != 0) p.text.insert(0, " ");
      if (re_)
        split_at(*re_, SplitBehavior::kIsolated, p, out);
      else
        out.push_back(std::move(p));
    }
    for (auto& p : out) p.text = byte_level_chars(p.text);
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split,
                        const std::string& where)
      : replacement_(std::move(replacement)),
        prepend_(prepend),
        space_(std::make_unique<Regex>(" ", where)),
        mark_(split ? std::make_unique<Regex>("\\Q" + replacement_ + "\\E", where) : nullptr) {}
  void split(std::vector<TextPiece>& pieces) const override {
    std::vector<TextPiece> out;
    for (auto p : pieces) {
      replace_all(*space_, replacement_, p.text);
      const bool starts = p.text.rfind(replacement_, 0) == 0;
      if (!starts && (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && p.first)))
        p.text.insert(0, replacement_);
      if (mark_)
        split_at(*mark_, SplitBehavior::kMergedWithNext, p, out);
      else
        out.push_back(std::move(p));
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  std::unique_ptr<Regex> space_, mark_;
};

}  // namespace

std::string byte_level_chars(const std::string& bytes) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool visible = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      utf8proc_uint8_t buf[4];
      const auto n = utf8proc_encode_char(visible ? b : next++, buf);
      t[size_t(b)].assign(reinterpret_cast<char*>(buf), size_t(n));
    }
    return t;
  }();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += table[b];
  return out;
}

void require_utf8(const std::string& text, const std::string& where) {
  utf8proc_int32_t c;
  for (size_t at = 0; at < text.size();) {
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + at,
                                    utf8proc_ssize_t(text.size() - at), &c);
    if (n <= 0) throw InputError(where + ": invalid UTF-8 at byte " + std::to_string(at));
    at += size_t(n);
  }
}

namespace {

// A normalizer's or pre-tokenizer's "type"; InputError when the object has none.
std::string type_of(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw InputError(where + ": expected an object with a \"type\"");
  return j["type"].get<std::string>();
}

// The parts of a Sequence (its list `key`), each read by T::from_json; null parts drop out.
template <typename T>
std::vector<std::unique_ptr<T>> sequence_parts(const json& j, const char* key,
                                               const std::string& where) {
  if (!j.contains(key) || !j[key].is_array())
    throw InputError(where + " (Sequence): \"" + key + "\" must be a list");
  std::vector<std::unique_ptr<T>> parts;
  for (const auto& item : j[key])
    if (auto part = T::from_json(item, where)) parts.push_back(std::move(part));
  return parts;
}

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  const std::string here = where + " (" + type + ")";
  if (type == "Sequence")
    return std::make_unique<SequenceNormalizer>(
        sequence_parts<Normalizer>(j, "normalizers", where));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC")
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD")
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend")
    return std::make_unique<PrependNormalizer>(string_field(j, "prepend", here));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(pattern_field(j, here),
                                               string_field(j, "content", here));
  throw InputError(where + ": normalizer \"" + type +
                   "\" is not supported (Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
                   "Replace)");
}

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  const std::string here = where + " (" + type + ")";
  if (type == "Sequence")
    return std::make_unique<SequencePreTokenizer>(
        sequence_parts<PreTokenizer>(j, "pretokenizers", where));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(bool_field(j, "add_prefix_space", true, here),
                                                   bool_field(j, "use_regex", true, here), here);
  if (type == "Split") {
    if (bool_field(j, "invert", false, here))
      throw InputError(here + ": \"invert\": true is not supported");
    return std::make_unique<RegexSplit>(pattern_field(j, here),
                                        parse_behavior(j.value("behavior", json()), here));
  }
  if (type == "Digits")
    return std::make_unique<RegexSplit>(
        std::make_unique<Regex>(
            bool_field(j, "individual_digits", false, here) ? "\\p{N}" : "\\p{N}+", here),
        SplitBehavior::kIsolated);
  if (type == "Metaspace") {
    using P = MetaspacePreTokenizer::Prepend;
    P prepend = bool_field(j, "add_prefix_space", true, here) ? P::kAlways : P::kNever;
    if (j.contains("prepend_scheme")) {
      const std::string s =
          j["prepend_scheme"].is_string() ? j["prepend_scheme"].get<std::string>() : "";
      if (s == "always")
        prepend = P::kAlways;
      else if (s == "first")
        prepend = P::kFirst;
      else if (s == "never")
        prepend = P::kNever;
      else
        throw InputError(here + ": prepend_scheme \"" + s + "\": expected always, first or never");
    }
    return std::make_unique<MetaspacePreTokenizer>(string_field(j, "replacement", here), prepend,
                                                   bool_field(j, "split", true, here), here);
  }
  throw InputError(where + ": pre-tokenizer \"" + type +
                   "\" is not supported (Sequence, ByteLevel, Split, Digits, Metaspace)");
}

}  // namespace tallrec
