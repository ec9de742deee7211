// The LLaMA SentencePiece tokenizer, used as HF's slow LlamaTokenizer is by TALLRec:
// BOS + SentencePiece ids of the text. SentencePiece stays behind this interface (and out of
// tallrec-train, whose libtorch clashes with it; see DESIGN.md).
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
  // Throws InputError naming the path if the model is missing or not a SentencePiece model.
  explicit Tokenizer(const std::filesystem::path& model_path);
  ~Tokenizer();

  // SentencePiece ids of `text`, without BOS/EOS.
  std::vector<int32_t> encode(std::string_view text) const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t vocab_size() const;
  std::string piece(int32_t id) const;
  // SHA-256 of the model file: identifies the tokenizer in tokenized-data metadata.
  const std::string& model_sha256() const { return sha256_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string sha256_;
};

}  // namespace tallrec
