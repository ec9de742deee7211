// The files of a checkpoint folder as TRP/1 transfers list and send them (docs/dev/protocol.md
// §3.4, §3.5): the ones its manifest.json names, then manifest.json itself. Shared by the
// coordinator (downloads, LEASE's `resume`) and the worker (OFFER, uploads).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tallrec {

inline constexpr size_t kChunkDataBytes = 1u << 20;  // what a sender puts in one CHUNK

struct TransferFile {
  std::string name;
  int64_t bytes;
  std::string sha256;
};

// The manifest's hashes are taken as they stand; manifest.json's own is `manifest_sha`, or
// computed when that is empty. Throws Error naming the folder for an unreadable manifest or an
// entry that is not a plain file name.
std::vector<TransferFile> checkpoint_files(const std::filesystem::path& dir,
                                           const std::string& manifest_sha = "");
// As a message lists them: [{name, bytes, sha256}].
nlohmann::json transfer_files_json(const std::vector<TransferFile>& files);

}  // namespace tallrec
