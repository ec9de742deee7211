// A read-only memory map of a whole file, unmapped on destruction. Token arrays and model
// weights are read through it, so opening a file costs no copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace tallrec {

class MappedFile {
 public:
  // Throws InputError naming the path if it cannot be opened, Error if mmap fails.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Drops the pages of [offset, offset + length) from this process's resident memory; the bytes
  // stay readable (touched again, they come back from the file). For a tensor that was copied
  // out: without this its pages would count twice in the process's resident set.
  void release(size_t offset, size_t length) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tallrec
