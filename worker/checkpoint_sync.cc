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

FetchResult fetch_checkpoints(CoordinatorLink& link, int64_t attempt, const json& resume,
                              const fs::path& checkpoints_dir, const std::function<bool()>& on_idle,
                              const std::function<void(const Message&)>& elsewhere) {
  if (resume.is_null()) return FetchResult::kFetched;
  fs::create_directories(checkpoints_dir);
  for (const auto& c : resume.at("checkpoints")) {
    const std::string name = c.at("checkpoint");
    if (!is_checkpoint_name(name)) return FetchResult::kFailed;
    std::vector<TransferFile> files;
    for (const auto& f : c.at("files"))
      files.push_back({f.at("name"), f.at("bytes"), f.at("sha256")});
    bool fetched = false;
    for (int attempt_no = 1; attempt_no <= kMaxTries && !fetched; ++attempt_no) {
      const fs::path staging = checkpoints_dir / (".fetch-" + name);
      std::error_code ec;
      fs::remove_all(staging, ec);
      fs::create_directories(staging);
      const std::string transfer =
          "f" + std::to_string(attempt) + "-" + name + "-" + std::to_string(attempt_no);
      link.send(MessageType::kFetch, {{"attempt", attempt},
                                      {"transfer", transfer},
                                      {"checkpoint", name},
                                      {"chunks", kFetchWindow}});
      std::map<std::string, int64_t> written;
      size_t complete = 0;
      bool broken = false;
      auto last_progress = Clock::now();
      while (!broken && complete < files.size()) {
        if (!on_idle()) return FetchResult::kCanceled;
        if (Clock::now() - last_progress > kStall) break;
        auto m = link.receive(100);
        if (!m) continue;
        const bool ours = m->body.value("attempt", int64_t(-1)) == attempt;
        if (ours &&
            (m->type == MessageType::kCancel ||
             (m->type == MessageType::kError && m->body.value("code", "") == "stale-attempt"))) {
          return FetchResult::kCanceled;
        }
        if (m->body.value("transfer", "") != transfer) {
          elsewhere(*m);
          continue;
        }
        if (m->type == MessageType::kError) break;
        if (m->type != MessageType::kChunk) continue;
        last_progress = Clock::now();
        const std::string file = m->body["file"];
        auto entry = std::find_if(files.begin(), files.end(),
                                  [&](const TransferFile& f) { return f.name == file; });
        if (entry == files.end() || !is_plain_file_name(file) ||
            m->body["offset"].get<int64_t>() != written[file]) {
          broken = true;
          continue;
        }
        std::ofstream(staging / file, std::ios::binary | std::ios::app)
            .write(m->data.data(), std::streamsize(m->data.size()));
        written[file] += int64_t(m->data.size());
        link.send(MessageType::kCredit, {{"transfer", transfer}, {"chunks", 1}});
        if (m->body["last"].get<bool>()) ++complete;
      }
      if (broken || complete < files.size()) continue;
      fetched = std::all_of(files.begin(), files.end(), [&](const TransferFile& f) {
        return fs::exists(staging / f.name) &&
               int64_t(fs::file_size(staging / f.name)) == f.bytes &&
               sha256_file(staging / f.name) == f.sha256;
      });
      if (fetched) {
        fs::remove_all(checkpoints_dir / name, ec);
        fs::rename(staging, checkpoints_dir / name);
      }
    }
    if (!fetched) return FetchResult::kFailed;
  }
  return FetchResult::kFetched;
}

}  // namespace tallrec
