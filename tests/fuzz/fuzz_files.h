// For targets whose parser reads files, not bytes: a scratch folder of this process, files
// written into it, and one fuzz input split into two files (a u32 little-endian length of the
// first, then the first, then the second), so that the mutator can change either.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

namespace tallrec::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("tallrec-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::pair<std::string_view, std::string_view> split_in_two(const uint8_t* data,
                                                                  size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  if (size < 4) return {all, {}};
  uint32_t first = 0;
  std::memcpy(&first, data, 4);
  const size_t n = std::min<size_t>(first, size - 4);
  return {all.substr(4, n), all.substr(4 + n)};
}

}  // namespace tallrec::fuzz
