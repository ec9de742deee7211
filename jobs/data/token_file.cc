#include "jobs/data/token_file.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/mapped_file.h"
#include "common/sha256.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'T', 'L', 'R', 'T', 'O', 'K', '0', '1'};
constexpr size_t kHeaderSize = 64;

size_t aligned(size_t bytes) { return (bytes + 7) & ~size_t(7); }

struct Layout {
  size_t train_offsets, eval_offsets, train_ids, eval_ids, prompt_lengths, labels, source_index,
      total;
};

Layout layout_for(uint64_t records, uint64_t train_tokens, uint64_t eval_tokens) {
  Layout l;
  size_t at = kHeaderSize;
  auto take = [&](size_t bytes) {
    size_t start = at;
    at += aligned(bytes);
    return start;
  };
  l.train_offsets = take((records + 1) * 8);
  l.eval_offsets = take((records + 1) * 8);
  l.train_ids = take(train_tokens * 4);
  l.eval_ids = take(eval_tokens * 4);
  l.prompt_lengths = take(records * 4);
  l.labels = take(records);
  l.source_index = take(records * 4);
  l.total = at;
  return l;
}

template <typename T>
void put(std::string& buf, size_t at, const std::vector<T>& v) {
  if (!v.empty()) std::memcpy(buf.data() + at, v.data(), v.size() * sizeof(T));
}

nlohmann::ordered_json meta_to_json(const TokenizedMeta& m) {
  return {{"format", "tallrec-tokens"},
          {"format_version", m.format_version},
          {"records", m.records},
          {"tokenizer_sha256", m.tokenizer_sha256},
          {"prompt_template", m.prompt_template},
          {"cutoff_len", m.cutoff_len},
          {"train_on_inputs", m.train_on_inputs},
          {"special_ids", {{"bos", m.bos_id}, {"eos", m.eos_id}, {"pad", m.pad_id}}},
          {"answer_ids", {{"yes", m.yes_id}, {"no", m.no_id}}},
          {"vocab_size", m.vocab_size},
          {"source", m.source},
          {"source_sha256", m.source_sha256},
          {"subset", m.few_shot ? nlohmann::ordered_json{{"sample", m.sample}, {"seed", m.seed}}
                                : nlohmann::ordered_json(nullptr)},
          {"tokens_sha256", m.tokens_sha256}};
}

TokenizedMeta meta_from_json(const std::string& text, const std::string& origin) {
  try {
    const nlohmann::json j = parse_json_from_outside(text, origin);
    if (!j.is_object() || j.value("format", "") != "tallrec-tokens")
      throw InputError(origin + ": not a tallrec tokens directory");
    TokenizedMeta m;
    // Every field converted exactly (get_exact): a float where an integer belongs is refused,
    // never cast (fuzz_token_file found an id of 8.2e42).
    auto field = [&](const nlohmann::json& object, const char* key, auto& out) {
      if (!object.is_object() || !object.contains(key) || !get_exact(object[key], out))
        throw InputError(origin + ": malformed metadata: field \"" + key +
                         "\" is missing or has the wrong type or range");
    };
    field(j, "format_version", m.format_version);
    if (m.format_version != 1) {
      throw InputError(origin + ": unsupported format_version " + std::to_string(m.format_version));
    }
    field(j, "records", m.records);
    field(j, "tokenizer_sha256", m.tokenizer_sha256);
    field(j, "prompt_template", m.prompt_template);
    field(j, "cutoff_len", m.cutoff_len);
    field(j, "train_on_inputs", m.train_on_inputs);
    const nlohmann::json special = j.value("special_ids", nlohmann::json()),
                         answers = j.value("answer_ids", nlohmann::json());
    field(special, "bos", m.bos_id);
    field(special, "eos", m.eos_id);
    field(special, "pad", m.pad_id);
    field(answers, "yes", m.yes_id);
    field(answers, "no", m.no_id);
    field(j, "vocab_size", m.vocab_size);
    field(j, "source", m.source);
    field(j, "source_sha256", m.source_sha256);
    if (!j.contains("subset"))
      throw InputError(origin + ": malformed metadata: no field \"subset\"");
    if (!j["subset"].is_null()) {
      m.few_shot = true;
      field(j["subset"], "sample", m.sample);
      field(j["subset"], "seed", m.seed);
    }
    field(j, "tokens_sha256", m.tokens_sha256);
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(origin + ": malformed metadata: " + printable_utf8(e.what()));
  }
}

}  // namespace

void write_tokenized(const fs::path& dir, TokenizedMeta meta, const TokenizedArrays& a) {
  const uint64_t records = a.labels.size();
  if (a.train_offsets.size() != records + 1 || a.eval_offsets.size() != records + 1 ||
      a.prompt_lengths.size() != records || a.source_index.size() != records) {
    throw Error("write_tokenized: arrays disagree on the record count");
  }
  const Layout l = layout_for(records, a.train_ids.size(), a.eval_ids.size());
  std::string buf(l.total, '\0');
  std::memcpy(buf.data(), kMagic, 8);
  const uint64_t header[3] = {records, a.train_ids.size(), a.eval_ids.size()};
  std::memcpy(buf.data() + 8, header, sizeof header);
  put(buf, l.train_offsets, a.train_offsets);
  put(buf, l.eval_offsets, a.eval_offsets);
  put(buf, l.train_ids, a.train_ids);
  put(buf, l.eval_ids, a.eval_ids);
  put(buf, l.prompt_lengths, a.prompt_lengths);
  put(buf, l.labels, a.labels);
  put(buf, l.source_index, a.source_index);

  meta.records = records;
  meta.tokens_sha256 = sha256_hex(buf);
  StagedDirectory staged(dir);
  write_file_atomically(staged.path() / "tokens.bin", buf);
  write_file_atomically(staged.path() / "meta.json", meta_to_json(meta).dump(2) + "\n");
  staged.commit();
}

TokenizedDataset::TokenizedDataset(const fs::path& dir) : dir_(dir) {
  const auto meta_path = dir / "meta.json";
  const auto bin_path = (dir / "tokens.bin").string();
  meta_ = meta_from_json(read_file(meta_path), meta_path.string());

  file_ = std::make_unique<MappedFile>(bin_path);
  base_ = file_->data();
  mapped_size_ = file_->size();
  auto fail = [&](const std::string& what) { throw InputError(bin_path + ": " + what); };
  if (mapped_size_ < kHeaderSize) fail("truncated (" + std::to_string(mapped_size_) + " bytes)");
  if (std::memcmp(base_, kMagic, 8) != 0) fail("not a tallrec tokens file (bad magic)");
  uint64_t header[3];
  std::memcpy(header, base_ + 8, sizeof header);
  records_ = header[0];
  if (records_ != meta_.records) fail("record count differs from meta.json");
  const Layout l = layout_for(header[0], header[1], header[2]);
  if (l.total != mapped_size_) {
    fail("size is " + std::to_string(mapped_size_) + " bytes, the header implies " +
         std::to_string(l.total));
  }
  train_offsets_ = reinterpret_cast<const uint64_t*>(base_ + l.train_offsets);
  eval_offsets_ = reinterpret_cast<const uint64_t*>(base_ + l.eval_offsets);
  train_ids_ = reinterpret_cast<const int32_t*>(base_ + l.train_ids);
  eval_ids_ = reinterpret_cast<const int32_t*>(base_ + l.eval_ids);
  prompt_lengths_ = reinterpret_cast<const uint32_t*>(base_ + l.prompt_lengths);
  labels_ = reinterpret_cast<const int8_t*>(base_ + l.labels);
  source_index_ = reinterpret_cast<const uint32_t*>(base_ + l.source_index);

  auto check_offsets = [&](const uint64_t* off, uint64_t total, const char* name) {
    if (off[0] != 0 || off[records_] != total)
      fail(std::string(name) + " offsets do not span the ids");
    for (size_t i = 0; i < records_; ++i)
      if (off[i] > off[i + 1])
        fail(std::string(name) + " offsets decrease at record " + std::to_string(i));
  };
  check_offsets(train_offsets_, header[1], "train");
  check_offsets(eval_offsets_, header[2], "eval");
  auto check_ids = [&](const int32_t* ids, uint64_t n, const char* name) {
    for (uint64_t k = 0; k < n; ++k)
      if (ids[k] < 0 || ids[k] >= meta_.vocab_size)
        fail(std::string(name) + " id " + std::to_string(ids[k]) + " outside the vocabulary");
  };
  check_ids(train_ids_, header[1], "train");
  check_ids(eval_ids_, header[2], "eval");
}

TokenizedDataset::~TokenizedDataset() = default;

std::span<const int32_t> TokenizedDataset::train_ids(size_t i) const {
  return {train_ids_ + train_offsets_[i], size_t(train_offsets_[i + 1] - train_offsets_[i])};
}

std::span<const int32_t> TokenizedDataset::eval_ids(size_t i) const {
  return {eval_ids_ + eval_offsets_[i], size_t(eval_offsets_[i + 1] - eval_offsets_[i])};
}

std::vector<int32_t> TokenizedDataset::training_labels(size_t i) const {
  auto ids = train_ids(i);
  std::vector<int32_t> labels(ids.begin(), ids.end());
  if (!meta_.train_on_inputs) {
    size_t masked = std::min<size_t>(prompt_lengths_[i], labels.size());
    std::fill(labels.begin(), labels.begin() + std::ptrdiff_t(masked), kIgnoreIndex);
  }
  return labels;
}

void TokenizedDataset::verify_checksum() const {
  Sha256 h;
  h.update(base_, mapped_size_);
  if (h.hex_digest() != meta_.tokens_sha256) {
    throw InputError((dir_ / "tokens.bin").string() +
                     ": SHA-256 differs from meta.json (file corrupted)");
  }
}

}  // namespace tallrec
