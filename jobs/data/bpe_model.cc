#include "jobs/data/bpe_model.h"

#include <cstdio>
#include <queue>

#include "common/error.h"

namespace tallrec {
namespace {

using json = nlohmann::json;

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// Bytes of the UTF-8 character that starts at `at` (1 for a stray byte).
size_t char_length(const std::string& s, size_t at) {
  const auto c = static_cast<unsigned char>(s[at]);
  const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return std::min(n, s.size() - at);
}

constexpr size_t kCacheEntries = 1 << 18;  // then the cache starts over: hostile text stays bounded

}  // namespace

BpeModel::BpeModel(const json& model, const std::string& where) {
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE")
    throw InputError(where + ": model type \"" + type + "\" is not supported (BPE only)");
  if (!model.value("dropout", json()).is_null())
    throw InputError(where + ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json v = model.value(key, json());
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
      throw InputError(where + ": BPE " + key + " is not supported");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw InputError(where + ": \"vocab\" must be an object of token: id");
  int32_t top = -1;
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
      throw InputError(where + ": vocab id of \"" + token + "\" must be an integer in [0, 2^24)");
    vocab_[token] = id.get<int32_t>();
    top = std::max(top, id.get<int32_t>());
  }
  tokens_.assign(size_t(top + 1), std::string());
  for (const auto& [token, id] : vocab_) tokens_[size_t(id)] = token;
  const json merges = model.value("merges", json::array());
  if (!merges.is_array()) throw InputError(where + ": \"merges\" must be a list");
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {  // "a b"
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        throw InputError(where + ": merge " + std::to_string(rank) + " \"" + s +
                         "\" is not two tokens separated by one space");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      throw InputError(where + ": merge " + std::to_string(rank) + " must be \"a b\" or [a, b]");
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || ic == vocab_.end())
      throw InputError(where + ": merge " + std::to_string(rank) + " (" + a + " " + b +
                       ") has a part or a result that is not in the vocabulary");
    merges_.try_emplace(pair_key(ia->second, ib->second), rank, ic->second);
    ++rank;
  }
  const json unk = model.value("unk_token", json());
  if (unk.is_string()) {
    auto it = vocab_.find(unk.get<std::string>());
    if (it == vocab_.end())
      throw InputError(where + ": unk_token \"" + unk.get<std::string>() +
                       "\" is not in the vocabulary");
    unk_ = it->second;
  }
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
}

std::optional<int32_t> BpeModel::id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string BpeModel::token(int32_t id) const {
  return id >= 0 && size_t(id) < tokens_.size() ? tokens_[size_t(id)] : std::string();
}

void BpeModel::encode(const std::string& piece, std::vector<int32_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  if (auto whole = ignore_merges_ ? id(piece) : std::nullopt) {
    symbols.push_back(*whole);
  } else {
    for (size_t at = 0; at < piece.size();) {
      const size_t n = char_length(piece, at);
      const std::string c = piece.substr(at, n);
      at += n;
      if (auto i = id(c)) {
        symbols.push_back(*i);
        continue;
      }
      std::vector<int32_t> bytes;
      if (byte_fallback_)
        for (unsigned char b : c) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", b);
          if (auto i = id(name)) bytes.push_back(*i);
        }
      if (byte_fallback_ && bytes.size() == c.size()) {
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
      } else {
        if (unk_ < 0)
          throw InputError("tokenizer: the character \"" + c +
                           "\" is not in the vocabulary and there is no unk_token");
        if (!(fuse_unk_ && !symbols.empty() && symbols.back() == unk_)) symbols.push_back(unk_);
      }
    }
    merge(symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheEntries) cache_.clear();
  cache_.emplace(piece, std::move(symbols));
}

// Applies merges lowest rank first, leftmost first on a tie, as tokenizers' Word::merge_all: a
// heap of candidate pairs over a linked list of symbols, O(n log n) (a piece can be a long run of
// one character).
void BpeModel::merge(std::vector<int32_t>& ids) const {
  const int n = int(ids.size());
  if (n < 2) return;
  std::vector<int> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
    prev[size_t(i)] = i - 1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int pos) {
    if (pos < 0 || next[size_t(pos)] < 0) return;
    auto it = merges_.find(pair_key(ids[size_t(pos)], ids[size_t(next[size_t(pos)])]));
    if (it != merges_.end()) heap.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  std::vector<bool> dead(size_t(n), false);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int pos = top.pos;
    if (dead[size_t(pos)] || next[size_t(pos)] < 0) continue;
    const int right = next[size_t(pos)];
    auto it = merges_.find(pair_key(ids[size_t(pos)], ids[size_t(right)]));
    // Stale when the pair there no longer makes the same token (tokenizers' own test).
    if (it == merges_.end() || it->second.second != top.merged) continue;
    ids[size_t(pos)] = it->second.second;
    dead[size_t(right)] = true;
    next[size_t(pos)] = next[size_t(right)];
    if (next[size_t(pos)] >= 0) prev[size_t(next[size_t(pos)])] = pos;
    consider(prev[size_t(pos)]);
    consider(pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[size_t(i)]) out.push_back(ids[size_t(i)]);
  ids = std::move(out);
}

}  // namespace tallrec
