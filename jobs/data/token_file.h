// Tokenized datasets on disk: a directory with `meta.json` (what produced the tokens) and
// `tokens.bin` (flat little-endian arrays a trainer memory-maps). No SentencePiece here, so
// tallrec-train can read the files. Layout of tokens.bin (every section 8-byte aligned):
//   header  : magic "TLRTOK01", u64 records, u64 train_tokens, u64 eval_tokens, u64 reserved[4]
//   u64 train_offsets[records+1]   record i's training ids are train_ids[off[i], off[i+1])
//   u64 eval_offsets[records+1]
//   i32 train_ids[train_tokens]    BOS + prompt-with-answer (+ EOS), truncated at cutoff
//   i32 eval_ids[eval_tokens]      BOS + prompt ending after "### Response:\n", not truncated
//   u32 prompt_lengths[records]    leading training tokens that are prompt, not answer
//   i8  labels[records]            1 "Yes.", 0 "No.", -1 other
//   u32 source_index[records]      position of the record in the source JSON file
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tallrec {

class MappedFile;
inline constexpr int kIgnoreIndex = -100;  // label of tokens that do not count in the loss

struct TokenizedMeta {
  int format_version = 1;
  std::string tokenizer_sha256;
  std::string prompt_template;  // "tallrec" | "clean"
  int64_t cutoff_len = 512;
  bool train_on_inputs = true;
  int32_t bos_id = 1, eos_id = 2, pad_id = 0;
  int32_t yes_id = -1, no_id = -1;  // looked up from the tokenizer, never hard-coded
  int32_t vocab_size = 0;
  std::string source;  // the prompt JSON file the records came from
  std::string source_sha256;
  bool few_shot = false;  // records are TALLRec's few-shot subset of the source ...
  int64_t sample = -1;    // ... of this size (-1: all) ...
  uint64_t seed = 0;      // ... drawn with this seed; otherwise in source order
  uint64_t records = 0;
  std::string tokens_sha256;  // of tokens.bin
};

// The arrays, in memory, as the writer builds them.
struct TokenizedArrays {
  std::vector<uint64_t> train_offsets{0}, eval_offsets{0};
  std::vector<int32_t> train_ids, eval_ids;
  std::vector<uint32_t> prompt_lengths;
  std::vector<int8_t> labels;
  std::vector<uint32_t> source_index;
};

// Writes `dir` (meta.json + tokens.bin) atomically; fills meta.records and meta.tokens_sha256.
void write_tokenized(const std::filesystem::path& dir, TokenizedMeta meta,
                     const TokenizedArrays& arrays);

// A read-only, memory-mapped view of a tokenized directory. Construction checks the header,
// the sizes and every offset and id; it throws InputError naming the file on any mismatch.
class TokenizedDataset {
 public:
  explicit TokenizedDataset(const std::filesystem::path& dir);
  ~TokenizedDataset();
  TokenizedDataset(const TokenizedDataset&) = delete;
  TokenizedDataset& operator=(const TokenizedDataset&) = delete;

  const TokenizedMeta& meta() const { return meta_; }
  size_t size() const { return records_; }
  std::span<const int32_t> train_ids(size_t i) const;
  std::span<const int32_t> eval_ids(size_t i) const;
  uint32_t prompt_length(size_t i) const { return prompt_lengths_[i]; }
  int label(size_t i) const { return labels_[i]; }
  uint32_t source_index(size_t i) const { return source_index_[i]; }
  // Training labels as TALLRec builds them: the input ids, with the prompt part set to
  // kIgnoreIndex when train_on_inputs is off.
  std::vector<int32_t> training_labels(size_t i) const;
  // Recomputes the SHA-256 of tokens.bin and compares it with meta.json.
  void verify_checksum() const;

 private:
  std::filesystem::path dir_;
  TokenizedMeta meta_;
  std::unique_ptr<MappedFile> file_;
  size_t records_ = 0;
  const uint8_t* base_ = nullptr;
  size_t mapped_size_ = 0;
  const uint64_t *train_offsets_ = nullptr, *eval_offsets_ = nullptr;
  const int32_t *train_ids_ = nullptr, *eval_ids_ = nullptr;
  const uint32_t* prompt_lengths_ = nullptr;
  const int8_t* labels_ = nullptr;
  const uint32_t* source_index_ = nullptr;
};

}  // namespace tallrec
