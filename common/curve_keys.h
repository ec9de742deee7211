// CURVE key files (made by `tallrec keys`, read by `tallrec coordinator` and `tallrec worker`).
//   NAME.key   {"public": Z85, "secret": Z85}, mode 0600: the owner's key pair
//   NAME.pub   one line, the Z85 public key: what the other side is given
// Z85 keys are 40 characters (ZeroMQ's encoding of 32 bytes). This file reads and checks them;
// making them needs libzmq and lives with the CLI.
#pragma once

#include <filesystem>
#include <set>
#include <string>

namespace tallrec {

struct CurveKeyPair {
  std::string public_key, secret_key;  // Z85
};

// A worker's side of CURVE: its key pair and the coordinator's public key.
struct CurveClient {
  CurveKeyPair own;
  std::string server_public_key;
};

// Throws InputError naming the file when it is missing, malformed or readable by others.
CurveKeyPair read_curve_key_pair(const std::filesystem::path& key_file);
std::string read_curve_public_key(const std::filesystem::path& pub_file);
// Every *.pub in `dir`: the workers a coordinator lets in.
std::set<std::string> read_curve_public_keys(const std::filesystem::path& dir);
bool is_z85_key(const std::string& key);

}  // namespace tallrec
