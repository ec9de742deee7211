#include "common/model_folder.h"

#include <nlohmann/json.hpp>

#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {
namespace fs = std::filesystem;

const fs::path& ModelWeightFiles::file_of(const std::string& tensor) const {
  if (shard_of.empty()) return files.front();
  auto it = shard_of.find(tensor);
  if (it == shard_of.end())
    throw InputError(index.string() + ": missing tensor \"" + printable_utf8(tensor) +
                     "\" in weight_map");
  return it->second;
}

ModelWeightFiles find_model_weight_files(const fs::path& dir) {
  ModelWeightFiles out;
  for (const auto& [single, index] :
       {std::pair{"model.safetensors", "model.safetensors.index.json"},
        std::pair{"pytorch_model.bin", "pytorch_model.bin.index.json"}}) {
    if (fs::exists(dir / index)) {
      out.index = dir / index;
      break;
    }
    if (fs::exists(dir / single)) {
      out.files.push_back(dir / single);
      return out;
    }
  }
  if (out.index.empty())
    throw InputError(dir.string() +
                     ": no model.safetensors, pytorch_model.bin or their .index.json");
  const std::string origin = out.index.string();
  const nlohmann::json j = parse_json_from_outside(read_file(out.index), origin);
  const auto map = j.is_object() ? j.find("weight_map") : j.end();
  if (map == j.end() || !map->is_object() || map->empty())
    throw InputError(origin + ": malformed index: no \"weight_map\" object of tensor -> shard");
  std::set<std::string> seen;
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string())
      throw InputError(origin + ": malformed index: the shard of \"" + printable_utf8(name) +
                       "\" is not a file name");
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
        f == "." || f == "..")
      throw InputError(origin + ": shard \"" + printable_utf8(f) + "\" is not a file name");
    out.shard_of[name] = dir / f;
    if (seen.insert(f).second) {
      if (!fs::exists(dir / f))
        throw InputError((dir / f).string() + ": a shard the index names is missing");
      out.files.push_back(dir / f);
    }
  }
  return out;
}

}  // namespace tallrec
