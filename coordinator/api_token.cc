#include "coordinator/api_token.h"

#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace tallrec {

std::string load_or_create_api_token(const std::filesystem::path& file, bool* created) {
  if (std::filesystem::exists(file)) {
    std::string token = read_file(file);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.size() < 32) throw InputError(file.string() + ": the API token in it is too short (delete it to make a new one)");
    *created = false;
    return token;
  }
  unsigned char bytes[32];
  std::ifstream random("/dev/urandom", std::ios::binary);
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) throw Error("cannot read /dev/urandom for the API token");
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
