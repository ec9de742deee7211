// SHA-256 (FIPS 180-4). Our own small implementation so that tallrec-train needs no OpenSSL:
// it must build on GPU machines that have libtorch and header-only libraries only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace tallrec {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Lowercase hex digest. The object must not be updated afterwards.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);
// Streams the file; throws tallrec::Error naming the path when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace tallrec
