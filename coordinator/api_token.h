// The bearer token that HTTP mutations need (and reads, when so configured): made at the first
// start (32 random bytes, hex), kept in a file of mode 0600, printed once.
#pragma once

#include <filesystem>
#include <string>

namespace tallrec {

// The token stored in `file`, or a new one written there; `created` says which.
std::string load_or_create_api_token(const std::filesystem::path& file, bool* created);

}  // namespace tallrec
