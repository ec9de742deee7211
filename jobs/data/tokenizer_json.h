// An HF tokenizer.json with a BPE model (the byte-level BPE of Llama-3, Qwen2, SmolLM2 and GPT-2,
// and the Metaspace/byte-fallback BPE of converted Llama-2 and Mistral), encoding text as HF
// tokenizers' encode(text, add_special_tokens=False) does: added tokens split out first, each
// segment between them normalized, pre-tokenized, and BPE-encoded piece by piece. Whatever the
// file asks for that is not implemented is refused by name (InputError), never approximated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tallrec {

class JsonTokenizer {
 public:
  // Reads `path` (at most 256 MiB, nesting bounded) and, beside it, tokenizer_config.json and
  // generation_config.json for the EOS token when they are there.
  explicit JsonTokenizer(const std::filesystem::path& path);
  ~JsonTokenizer();

  // Throws InputError when `text` is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text) const;
  // What the post-processor puts before the text (TemplateProcessing's leading special token):
  // HF's tokenizer(text) adds it, as TALLRec calls it. -1 when it adds none.
  int32_t bos_id() const { return bos_; }
  // tokenizer_config.json's eos_token, else generation_config.json's eos_token_id; -1 if neither.
  int32_t eos_id() const { return eos_; }
  int32_t vocab_size() const { return vocab_size_; }
  std::string piece(int32_t id) const;
  // The id of a token of the vocabulary or an added token, or -1.
  int32_t token_id(const std::string& token) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int32_t bos_ = -1, eos_ = -1, vocab_size_ = 0;
};

}  // namespace tallrec
