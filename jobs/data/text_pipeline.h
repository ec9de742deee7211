// The text stages of an HF tokenizer.json that run before its model, as HF tokenizers runs them:
// a normalizer (NFC, Prepend, Replace, ...) and a pre-tokenizer that cuts the normalized text into
// pieces (ByteLevel with its regex, Split with a pattern, Digits, Metaspace), each piece then
// encoded by the BPE model on its own. Built from the JSON; a kind or an option that is not
// supported is refused by name (InputError), never approximated.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tallrec {

class Normalizer {
 public:
  // nullptr for a null normalizer (text unchanged). `where` names the field in errors.
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& j, const std::string& where);
  virtual ~Normalizer() = default;
  virtual void apply(std::string& text) const = 0;
};

// A piece of text on its way to the model; `first` when it begins its segment of the input (the
// text between two added tokens) at the segment's start and that segment is the input's first
// (Metaspace's prepend_scheme "first").
struct TextPiece {
  std::string text;
  bool first = false;
};

class PreTokenizer {
 public:
  // nullptr for a null pre-tokenizer (the whole segment is one piece).
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& j, const std::string& where);
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their parts, in order. Empty parts are dropped.
  virtual void split(std::vector<TextPiece>& pieces) const = 0;
};

// GPT-2's byte-to-unicode alphabet (what ByteLevel vocabularies are written in): the visible
// Latin-1 bytes stand for themselves, the others for U+0100 onwards. Returns UTF-8 text.
std::string byte_level_chars(const std::string& bytes);

// Throws InputError naming `where` and the byte offset when `text` is not valid UTF-8.
void require_utf8(const std::string& text, const std::string& where);

}  // namespace tallrec
