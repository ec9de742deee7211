#include "common/curve_keys.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace tallrec {
namespace fs = std::filesystem;

bool is_z85_key(const std::string& key) {
  static const std::string alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return key.size() == 40 && key.find_first_not_of(alphabet) == std::string::npos;
}

CurveKeyPair read_curve_key_pair(const fs::path& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0)
    throw InputError(key_file.string() + ": no such key file (make one with `tallrec keys`)");
  if (st.st_mode & 0077)
    throw InputError(key_file.string() +
                     ": a secret key must not be readable by others (chmod 600)");
  const auto doc = nlohmann::json::parse(read_file(key_file), nullptr, false);
  if (!doc.is_object() || !doc.contains("public") || !doc.contains("secret") ||
      !doc["public"].is_string() || !doc["secret"].is_string() || !is_z85_key(doc["public"]) ||
      !is_z85_key(doc["secret"])) {
    throw InputError(key_file.string() +
                     ": not a tallrec key file ({\"public\", \"secret\"}, 40-character Z85 keys)");
  }
  return {doc["public"], doc["secret"]};
}

std::string read_curve_public_key(const fs::path& pub_file) {
  std::string key = read_file(pub_file);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  if (!is_z85_key(key))
    throw InputError(pub_file.string() + ": not a public key (one line, 40 Z85 characters)");
  return key;
}

std::set<std::string> read_curve_public_keys(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw InputError(dir.string() + ": not a folder of worker .pub keys");
  std::set<std::string> keys;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".pub") keys.insert(read_curve_public_key(e.path()));
  if (keys.empty())
    throw InputError(dir.string() + ": holds no .pub key, so no worker could connect");
  return keys;
}

}  // namespace tallrec
