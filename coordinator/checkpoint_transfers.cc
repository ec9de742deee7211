#include "coordinator/checkpoint_transfers.h"

#include <algorithm>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/sha256.h"
#include "common/transfer_files.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr int64_t kUploadWindow = 8;  // CHUNKs a worker may have in flight
constexpr int64_t kMaxFileBytes = int64_t(64) << 30;

const TransferFile& manifest_entry(const std::vector<TransferFile>& files) {
  return *std::find_if(files.begin(), files.end(),
                       [](const TransferFile& f) { return f.name == "manifest.json"; });
}
}  // namespace

struct CheckpointTransfers::Upload {
  int64_t attempt;
  std::string run_key, name;
  int64_t step;
  std::vector<TransferFile> files;
  std::map<std::string, int64_t> written;  // bytes received per file
  size_t complete = 0;                     // files whose last chunk arrived
  std::unique_ptr<StagedDirectory> staged;
  double last_activity;
};

struct CheckpointTransfers::Download {
  fs::path dir;
  std::vector<TransferFile> files;
  size_t file = 0;
  int64_t offset = 0;
  int64_t credit = 0;
  double last_activity;
};

CheckpointTransfers::CheckpointTransfers(Store& store, fs::path artifacts, Send send)
    : store_(store), artifacts_(std::move(artifacts)), send_(std::move(send)) {
  fs::create_directories(artifacts_ / "runs");
  // A coordinator killed mid-upload leaves its staging folders (step-N.tmp-PID-X); nothing
  // else writes here and no transfer survives a restart, so they are garbage now.
  std::error_code ec;
  for (const auto& run : fs::directory_iterator(artifacts_ / "runs", ec)) {
    if (!run.is_directory()) continue;
    for (const auto& entry : fs::directory_iterator(run.path(), ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("step-", 0) == 0 && name.find(".tmp-") != std::string::npos)
        fs::remove_all(entry.path(), ec);
    }
  }
}

CheckpointTransfers::~CheckpointTransfers() = default;

void CheckpointTransfers::error(const std::string& worker, const std::string& code,
                                const std::string& what, const std::string& transfer) {
  send_(worker,
        {MessageType::kError, {{"code", code}, {"message", what}, {"transfer", transfer}}, ""});
}

void CheckpointTransfers::offer(const std::string& worker, const json& body, double now) {
  const int64_t attempt = body["attempt"];
  const std::string transfer = body.value("transfer", "");
  const json& c = body["checkpoint"];
  auto live = store_.queue.live_attempt(attempt);
  if (!live)
    return error(worker, "stale-attempt", "attempt " + std::to_string(attempt) + " is not live",
                 transfer);
  if (transfer.empty() || transfer.size() > 64 || !c.contains("name") || !c["name"].is_string() ||
      !is_checkpoint_name(c["name"]) || !c.contains("step") || !c["step"].is_number_integer() ||
      !c.contains("files") || !c["files"].is_array() || c["files"].empty() ||
      c["files"].size() > 64) {
    return error(worker, "bad-message",
                 "OFFER needs a transfer id and a checkpoint {name: step-NNNNNNNN, step, files}",
                 transfer);
  }
  auto u = std::make_unique<Upload>();
  u->attempt = attempt;
  u->run_key = live->second;
  u->name = c["name"];
  u->step = c["step"];
  for (const auto& f : c["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() ||
        !is_plain_file_name(f["name"]) || !f.contains("bytes") || !f["bytes"].is_number_integer() ||
        f["bytes"].get<int64_t>() < 0 || f["bytes"].get<int64_t>() > kMaxFileBytes ||
        !f.contains("sha256") || !f["sha256"].is_string()) {
      return error(worker, "bad-message", "OFFER: every file needs a plain name, bytes and sha256",
                   transfer);
    }
    u->files.push_back({f["name"], f["bytes"], f["sha256"]});
    u->written[f["name"]] = 0;
  }
  if (u->written.size() != u->files.size() || !u->written.count("manifest.json"))
    return error(worker, "bad-message",
                 "OFFER: file names must be distinct and include manifest.json", transfer);
  // Already stored (a re-offer after a reconnect): nothing to send.
  const std::string manifest_sha = manifest_entry(u->files).sha256;
  for (const auto& s : store_.checkpoints.of_run(live->first)) {
    if (s.step == u->step && s.sha256 == manifest_sha && fs::exists(artifacts_ / s.path)) {
      send_(worker,
            {MessageType::kCredit, {{"transfer", transfer}, {"chunks", 0}, {"stored", true}}, ""});
      return;
    }
  }
  const fs::path final_dir = artifacts_ / "runs" / u->run_key / u->name;
  fs::create_directories(final_dir.parent_path());
  u->staged = std::make_unique<StagedDirectory>(final_dir);
  u->last_activity = now;
  uploads_[{worker, transfer}] = std::move(u);
  send_(worker, {MessageType::kCredit, {{"transfer", transfer}, {"chunks", kUploadWindow}}, ""});
}

void CheckpointTransfers::chunk(const std::string& worker, const Message& m, double now) {
  const std::string transfer = m.body["transfer"], file = m.body["file"];
  auto it = uploads_.find({worker, transfer});
  if (it == uploads_.end())
    return error(worker, "bad-message", "no upload \"" + transfer + "\" is open", transfer);
  Upload& u = *it->second;
  auto w = u.written.find(file);
  const int64_t offset = m.body["offset"];
  const auto entry = std::find_if(u.files.begin(), u.files.end(),
                                  [&](const TransferFile& f) { return f.name == file; });
  if (w == u.written.end() || offset != w->second ||
      w->second + int64_t(m.data.size()) > entry->bytes) {
    uploads_.erase(it);
    return error(worker, "bad-message",
                 "CHUNK of \"" + file + "\" at offset " + std::to_string(offset) +
                     " does not continue the offer; upload dropped",
                 transfer);
  }
  {
    std::ofstream out(u.staged->path() / file, std::ios::binary | std::ios::app);
    out.write(m.data.data(), std::streamsize(m.data.size()));
    if (!out) {
      const std::string what = "cannot write " + (u.staged->path() / file).string();
      uploads_.erase(it);  // u is gone after this
      return error(worker, "bad-message", what, transfer);
    }
  }
  w->second += int64_t(m.data.size());
  u.last_activity = now;
  if (m.body["last"].get<bool>()) {
    if (w->second != entry->bytes) {
      const std::string what = file + ": got " + std::to_string(w->second) + " bytes, offered " +
                               std::to_string(entry->bytes);
      uploads_.erase(it);  // u, w and entry are gone after this
      return error(worker, "bad-checkpoint", what, transfer);
    }
    ++u.complete;
  }
  if (u.complete == u.files.size()) {
    finish_upload(worker, transfer, u, now);
    uploads_.erase({worker, transfer});
  } else {
    send_(worker, {MessageType::kCredit, {{"transfer", transfer}, {"chunks", 1}}, ""});
  }
}

void CheckpointTransfers::finish_upload(const std::string& worker, const std::string& id, Upload& u,
                                        double now) {
  for (const auto& f : u.files) {
    if (sha256_file(u.staged->path() / f.name) != f.sha256)
      return error(worker, "bad-checkpoint",
                   f.name + ": SHA-256 does not match the offer; nothing stored", id);
  }
  // The manifest must list exactly the other offered files, with their hashes: a resumed attempt
  // is later sent what the manifest names, so it must name nothing else.
  // Uploaded bytes: depth-bounded before the recursive parser sees them.
  const std::string manifest_text = read_file(u.staged->path() / "manifest.json");
  json manifest = find_json_too_deep(manifest_text) == std::string::npos
                      ? json::parse(manifest_text, nullptr, false)
                      : json();
  bool consistent = manifest.is_object() && manifest.size() + 1 == u.files.size();
  for (const auto& f : u.files)
    consistent = consistent && (f.name == "manifest.json" ||
                                (manifest.contains(f.name) && manifest[f.name] == f.sha256));
  if (!consistent)
    return error(worker, "bad-checkpoint",
                 "manifest.json does not list exactly the offered files; nothing stored", id);
  int64_t best_step = u.step, bytes = 0;
  for (const auto& f : u.files) bytes += f.bytes;
  try {  // keep the best checkpoint as well as the newest, as the trainer does
    best_step = parse_json_from_outside(read_file(u.staged->path() / "state.json"), "state.json")
                    .value("best_step", u.step);
  } catch (const std::exception&) {
  }
  if (!store_.queue.live_attempt(u.attempt))
    return error(worker, "stale-attempt", "attempt " + std::to_string(u.attempt) + " is not live",
                 id);
  u.staged->commit();
  const std::string relative = "runs/" + u.run_key + "/" + u.name;
  auto forgotten = store_.checkpoints.record(
      u.attempt, {u.step, relative, manifest_entry(u.files).sha256, bytes}, best_step, now);
  if (!forgotten)
    return error(worker, "stale-attempt", "attempt " + std::to_string(u.attempt) + " is not live",
                 id);
  for (const auto& p : *forgotten)
    to_delete_.push_back(artifacts_ / p);  // after the commit, not before
  if (metrics_) metrics_->add_checkpoint_bytes(uint64_t(bytes));
  send_(worker, {MessageType::kCredit, {{"transfer", id}, {"chunks", 0}, {"stored", true}}, ""});
}

void CheckpointTransfers::fetch(const std::string& worker, const json& body, double now) {
  const int64_t attempt = body["attempt"];
  const std::string transfer = body.value("transfer", ""), name = body["checkpoint"];
  auto live = store_.queue.live_attempt(attempt);
  if (!live)
    return error(worker, "stale-attempt", "attempt " + std::to_string(attempt) + " is not live",
                 transfer);
  if (transfer.empty() || transfer.size() > 64)
    return error(worker, "bad-message", "FETCH needs a transfer id", transfer);
  for (const auto& s : store_.checkpoints.of_run(live->first)) {
    if (s.path != "runs/" + live->second + "/" + name) continue;
    auto d = std::make_unique<Download>();
    d->dir = artifacts_ / s.path;
    d->files = checkpoint_files(d->dir, s.sha256);
    d->credit = std::max<int64_t>(0, body.value("chunks", int64_t(0)));
    d->last_activity = now;
    downloads_[{worker, transfer}] = std::move(d);
    return;
  }
  error(worker, "bad-message",
        "run " + live->second.substr(0, 12) + " has no stored checkpoint \"" + name + "\"",
        transfer);
}

void CheckpointTransfers::credit(const std::string& worker, const json& body, double now) {
  auto it = downloads_.find({worker, body["transfer"].get<std::string>()});
  if (it == downloads_.end()) return;  // a late grant for a finished or dropped download
  it->second->credit += std::max<int64_t>(0, body["chunks"].get<int64_t>());
  it->second->last_activity = now;
}

void CheckpointTransfers::pump(double now, double idle_seconds) {
  for (auto it = downloads_.begin(); it != downloads_.end();) {
    Download& d = *it->second;
    while (d.credit > 0 && d.file < d.files.size()) {
      const TransferFile& f = d.files[d.file];
      std::string data(size_t(std::min<int64_t>(kChunkDataBytes, f.bytes - d.offset)), '\0');
      std::ifstream in(d.dir / f.name, std::ios::binary);
      in.seekg(d.offset);
      in.read(data.data(), std::streamsize(data.size()));
      const bool last = d.offset + int64_t(data.size()) >= f.bytes;
      send_(
          it->first.first,
          {MessageType::kChunk,
           {{"transfer", it->first.second}, {"file", f.name}, {"offset", d.offset}, {"last", last}},
           data});
      d.offset += int64_t(data.size());
      --d.credit;
      d.last_activity = now;
      if (last) {
        ++d.file;
        d.offset = 0;
      }
    }
    const bool finished = d.file == d.files.size();
    it = finished || now - d.last_activity > idle_seconds ? downloads_.erase(it) : std::next(it);
  }
  for (auto it = uploads_.begin(); it != uploads_.end();)
    it = now - it->second->last_activity > idle_seconds ? uploads_.erase(it) : std::next(it);
}

void CheckpointTransfers::after_commit() {
  for (const auto& p : to_delete_) {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  to_delete_.clear();
}

json CheckpointTransfers::resume_point(int64_t run_id) {
  json out = json::array();
  for (const auto& s : store_.checkpoints.of_run(run_id)) {
    const fs::path dir = artifacts_ / s.path;
    if (!fs::exists(dir / "manifest.json")) continue;  // recorded but lost from disk: not offered
    out.push_back({{"checkpoint", dir.filename().string()},
                   {"step", s.step},
                   {"files", transfer_files_json(checkpoint_files(dir, s.sha256))}});
  }
  return out.empty() ? json(nullptr) : json{{"checkpoints", out}};
}

}  // namespace tallrec
