#include "worker/checkpoint_sync.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "common/transfer_files.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
constexpr int64_t kFetchWindow = 8;
constexpr auto kStall = std::chrono::seconds(10);
constexpr int kMaxTries = 3;

std::string read_range(const fs::path& file, int64_t offset, size_t bytes) {
  std::string data(bytes, '\0');
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  in.read(data.data(), std::streamsize(bytes));
  return data;
}
}  // namespace

CheckpointUploader::CheckpointUploader(CoordinatorLink& link, int64_t attempt,
                                       fs::path staging_root)
    : link_(link), attempt_(attempt), staging_root_(std::move(staging_root)) {}

bool CheckpointUploader::add(const fs::path& checkpoint_dir) {
  const fs::path staged = staging_root_ / checkpoint_dir.filename();
  std::error_code ec;
  fs::remove_all(staged, ec);
  try {
    fs::create_directories(staged);
    for (const auto& e : fs::directory_iterator(checkpoint_dir))
      fs::create_hard_link(e.path(), staged / e.path().filename());
    auto files = checkpoint_files(staged);  // listed once: offers and chunks reuse it
    for (const auto& f : files)             // whole, or pruned half-way: then it is not sent
      if (f.name != "manifest.json" && sha256_file(staged / f.name) != f.sha256)
        throw Error("torn");
    queue_.push_back({staged, std::move(files)});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker: checkpoint %s not uploaded: %s\n", checkpoint_dir.c_str(),
                 e.what());
    fs::remove_all(staged, ec);
    return false;
  }
  return true;
}

void CheckpointUploader::offer() {
  const Staged& staged = queue_.front();
  transfer_ = "u" + std::to_string(attempt_) + "-" + std::to_string(++transfer_count_);
  const std::string name = staged.dir.filename().string();
  link_.send(MessageType::kOffer, {{"attempt", attempt_},
                                   {"transfer", transfer_},
                                   {"checkpoint",
                                    {{"name", name},
                                     {"step", std::stoll(name.substr(5))},
                                     {"files", transfer_files_json(staged.files)}}}});
  credit_ = 0;
  file_ = 0;
  offset_ = 0;
  last_progress_ = Clock::now();
}

void CheckpointUploader::restart() {
  if (!queue_.empty()) transfer_.clear();  // pump() offers it again under a new id
}

bool CheckpointUploader::handle(const Message& m) {
  if (transfer_.empty() || m.body.value("transfer", "") != transfer_) return false;
  last_progress_ = Clock::now();
  if (m.type == MessageType::kCredit) {
    if (m.body.value("stored", false)) {
      std::error_code ec;
      fs::remove_all(queue_.front().dir, ec);
      queue_.pop_front();
      transfer_.clear();
      failures_ = 0;
      ++stored_;
    } else {
      credit_ += m.body["chunks"].get<int64_t>();
    }
    return true;
  }
  if (m.type == MessageType::kError) {
    const std::string code = m.body.value("code", "");
    std::fprintf(stderr, "worker: upload of %s refused: %s\n",
                 queue_.front().dir.filename().c_str(), m.body.value("message", "").c_str());
    std::error_code ec;
    if (code == "stale-attempt") {  // the run is not ours any more: nothing of it is wanted
      for (const auto& s : queue_) fs::remove_all(s.dir, ec);
      queue_.clear();
    } else if (++failures_ >= kMaxTries) {
      fs::remove_all(queue_.front().dir, ec);
      queue_.pop_front();
      failures_ = 0;
    }
    transfer_.clear();
    return true;
  }
  return false;
}

void CheckpointUploader::pump() {
  if (queue_.empty()) return;
  if (transfer_.empty()) return offer();
  if (Clock::now() - last_progress_ > kStall) return offer();
  const Staged& staged = queue_.front();
  while (credit_ > 0 && file_ < staged.files.size()) {
    const TransferFile& f = staged.files[file_];
    const size_t n = size_t(std::min<int64_t>(kChunkDataBytes, f.bytes - offset_));
    const bool last = offset_ + int64_t(n) >= f.bytes;
    link_.send(MessageType::kChunk,
               {{"transfer", transfer_}, {"file", f.name}, {"offset", offset_}, {"last", last}},
               read_range(staged.dir / f.name, offset_, n));
    --credit_;
    offset_ += int64_t(n);
    if (last) {
      ++file_;
      offset_ = 0;
    }
  }
}

CheckpointFetcher::CheckpointFetcher(CoordinatorLink& link, int64_t attempt, const json& resume,
                                     fs::path checkpoints_dir)
    : link_(link), attempt_(attempt), checkpoints_dir_(std::move(checkpoints_dir)) {
  if (resume.is_null()) {
    result_ = FetchResult::kFetched;
    return;
  }
  try {
    for (const auto& c : resume.at("checkpoints")) {
      Wanted w{c.at("checkpoint"), {}};
      for (const auto& f : c.at("files"))
        w.files.push_back({f.at("name"), f.at("bytes"), f.at("sha256")});
      wanted_.push_back(std::move(w));
    }
  } catch (const json::exception& e) {
    throw InputError(std::string("LEASE's resume is malformed: ") + e.what());
  }
  for (const auto& w : wanted_)
    if (!is_checkpoint_name(w.name)) result_ = FetchResult::kFailed;
  if (wanted_.empty()) result_ = FetchResult::kFetched;
  if (!result_) fs::create_directories(checkpoints_dir_);
}

void CheckpointFetcher::send_fetch() {
  const Wanted& w = wanted_[index_];
  const fs::path staging = checkpoints_dir_ / (".fetch-" + w.name);
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  transfer_ =
      "f" + std::to_string(attempt_) + "-" + w.name + "-" + std::to_string(++transfer_count_);
  link_.send(MessageType::kFetch, {{"attempt", attempt_},
                                   {"transfer", transfer_},
                                   {"checkpoint", w.name},
                                   {"chunks", kFetchWindow}});
  written_.clear();
  complete_ = 0;
  last_progress_ = Clock::now();
}

void CheckpointFetcher::pump() {
  if (result_) return;
  if (transfer_.empty()) return send_fetch();
  if (Clock::now() - last_progress_ > kStall) retry();
}

void CheckpointFetcher::restart() {
  if (!result_) transfer_.clear();  // pump() asks again under a new id
}

void CheckpointFetcher::retry() {
  transfer_.clear();
  if (++tries_ < kMaxTries) return;
  result_ = FetchResult::kFailed;
  std::error_code ec;  // what the last try wrote is no checkpoint: leave nothing of it
  fs::remove_all(checkpoints_dir_ / (".fetch-" + wanted_[index_].name), ec);
}

bool CheckpointFetcher::handle(const Message& m) {
  if (result_ || transfer_.empty() || m.body.value("transfer", "") != transfer_) return false;
  if (m.type == MessageType::kError) {
    retry();
    return true;
  }
  if (m.type != MessageType::kChunk) return true;
  last_progress_ = Clock::now();
  const Wanted& w = wanted_[index_];
  const std::string file = m.body.value("file", "");
  const bool known = std::any_of(w.files.begin(), w.files.end(),
                                 [&](const TransferFile& f) { return f.name == file; });
  if (!known || !is_plain_file_name(file) || !m.body["offset"].is_number_integer() ||
      m.body["offset"].get<int64_t>() != written_[file]) {
    retry();  // out of order or not asked for: this transfer is broken
    return true;
  }
  std::ofstream(checkpoints_dir_ / (".fetch-" + w.name) / file, std::ios::binary | std::ios::app)
      .write(m.data.data(), std::streamsize(m.data.size()));
  written_[file] += int64_t(m.data.size());
  link_.send(MessageType::kCredit, {{"transfer", transfer_}, {"chunks", 1}});
  if (m.body.value("last", false) && ++complete_ == w.files.size()) finish();
  return true;
}

void CheckpointFetcher::finish() {
  const Wanted& w = wanted_[index_];
  const fs::path staging = checkpoints_dir_ / (".fetch-" + w.name);
  const bool whole = std::all_of(w.files.begin(), w.files.end(), [&](const TransferFile& f) {
    return fs::exists(staging / f.name) && int64_t(fs::file_size(staging / f.name)) == f.bytes &&
           sha256_file(staging / f.name) == f.sha256;
  });
  if (!whole) return retry();
  std::error_code ec;
  fs::remove_all(checkpoints_dir_ / w.name, ec);
  fs::rename(staging, checkpoints_dir_ / w.name);
  transfer_.clear();
  tries_ = 0;
  if (++index_ == wanted_.size()) result_ = FetchResult::kFetched;
}

}  // namespace tallrec
