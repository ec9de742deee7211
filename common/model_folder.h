// The weight files of an HF model folder, found the way transformers looks for them:
// model.safetensors(.index.json) first, else pytorch_model.bin(.index.json), a single file or
// shards named by the index's weight_map. No torch: the CLI's pre-flight and tallrec-train
// read a folder the same way.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace tallrec {

struct ModelWeightFiles {
  std::vector<std::filesystem::path> files;               // every weight file, each once
  std::map<std::string, std::filesystem::path> shard_of;  // tensor -> its shard; empty: files[0]
  std::filesystem::path index;                            // the .index.json; empty: one file

  // The file that holds `tensor`; InputError naming the index when its weight_map lacks it.
  const std::filesystem::path& file_of(const std::string& tensor) const;
};

// Throws InputError naming the path: no weights at all, a malformed index, a shard that is not a
// plain file name in the folder (an index never points elsewhere), or a shard that is missing.
ModelWeightFiles find_model_weight_files(const std::filesystem::path& dir);

}  // namespace tallrec
