// HF tokenizers' BPE model: a vocabulary, ranked merges, and the rules for characters outside
// the vocabulary (byte fallback to <0xXX> tokens, or an unknown token). Encodes one pre-tokenized
// piece at a time, merging the lowest-ranked adjacent pair first (the leftmost on a tie), as
// tokenizers' word.rs does; pieces seen before come from a cache.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace tallrec {

class BpeModel {
 public:
  // From tokenizer.json's "model" object. InputError naming `where` for anything unsupported
  // (another model type, dropout, subword prefixes or suffixes) or inconsistent (a merge whose
  // parts or result are not in the vocabulary).
  BpeModel(const nlohmann::json& model, const std::string& where);

  // Appends the ids of `piece` (text in the vocabulary's alphabet) to `out`.
  void encode(const std::string& piece, std::vector<int32_t>& out) const;
  std::optional<int32_t> id(const std::string& token) const;
  std::string token(int32_t id) const;  // "" for an id outside the vocabulary
  int32_t max_id() const { return int32_t(tokens_.size()) - 1; }

 private:
  void merge(std::vector<int32_t>& symbols) const;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  int32_t unk_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace tallrec
