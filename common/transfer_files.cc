#include "common/transfer_files.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/protocol.h"
#include "common/sha256.h"

namespace tallrec {
namespace fs = std::filesystem;

std::vector<TransferFile> checkpoint_files(const fs::path& dir, const std::string& manifest_sha) {
  std::vector<TransferFile> files;
  const nlohmann::json manifest =
      nlohmann::json::parse(read_file(dir / "manifest.json"), nullptr, false);
  if (!manifest.is_object()) throw Error((dir / "manifest.json").string() + ": not a JSON object");
  for (const auto& [name, sha] : manifest.items()) {
    if (!is_plain_file_name(name) || !sha.is_string())
      throw Error(dir.string() + "/manifest.json: bad entry \"" + name + "\"");
    files.push_back({name, int64_t(fs::file_size(dir / name)), sha});
  }
  files.push_back({"manifest.json", int64_t(fs::file_size(dir / "manifest.json")),
                   manifest_sha.empty() ? sha256_file(dir / "manifest.json") : manifest_sha});
  return files;
}

nlohmann::json transfer_files_json(const std::vector<TransferFile>& files) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : files)
    out.push_back({{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  return out;
}

}  // namespace tallrec
