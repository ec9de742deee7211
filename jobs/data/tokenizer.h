// The tokenizer of a model folder, used as TALLRec uses HF's: BOS (when the tokenizer adds one) +
// ids of the text. Two kinds stand behind this one interface:
//   - LLaMA's SentencePiece tokenizer.model, as HF's slow LlamaTokenizer (TALLRec's) encodes;
//   - an HF tokenizer.json with a BPE model (jobs/data/tokenizer_json.h): Llama-3, Qwen2,
//     SmolLM2, Mistral, converted Llama-2.
// SentencePiece stays behind this interface (and out of tallrec-train, whose libtorch clashes with
// it; see docs/dev/design.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tallrec {

class Tokenizer {
 public:
  // `path`: a tokenizer.model, a tokenizer.json, or a model folder (its tokenizer.model when it
  // has one, as TALLRec's LlamaTokenizer reads, else its tokenizer.json). Throws InputError
  // naming the path if it is missing, not a tokenizer, or asks for something not supported.
  explicit Tokenizer(const std::filesystem::path& path);
  ~Tokenizer();

  // Ids of `text`, without BOS/EOS.
  std::vector<int32_t> encode(std::string_view text) const;
  int32_t bos_id() const;  // -1 when the tokenizer puts none before the text
  int32_t eos_id() const;  // -1 when none is known
  int32_t vocab_size() const;
  std::string piece(int32_t id) const;
  // SHA-256 of the tokenizer file: identifies the tokenizer in tokenized-data metadata.
  const std::string& model_sha256() const { return sha256_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string sha256_;
};

}  // namespace tallrec
