#include "coordinator/api_token.h"

#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace tallrec {

std::string load_or_create_api_token(const std::filesystem::path& file, bool* created) {
  if (std::filesystem::exists(file)) {
    // Like the CURVE secret key: a token others can read is a token others can use.
    const auto perms = std::filesystem::status(file).permissions();
    using p = std::filesystem::perms;
    if ((perms & (p::group_all | p::others_all)) != p::none)
      throw InputError(file.string() +
                       ": the API token must not be readable by others (chmod 600)");
    std::string token = read_file(file);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.size() < 32)
      throw InputError(file.string() +
                       ": the API token in it is too short (delete it to make a new one)");
    *created = false;
    return token;
  }
  unsigned char bytes[32];
  std::ifstream random("/dev/urandom", std::ios::binary);
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes))
    throw Error("cannot read /dev/urandom for the API token");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  if (!file.parent_path().empty()) std::filesystem::create_directories(file.parent_path());
  write_file_atomically(file, token + "\n", 0600);
  *created = true;
  return token;
}

}  // namespace tallrec
