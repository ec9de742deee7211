// Whole-or-nothing output. Readers never see a half-written file or directory: content goes
// to a temporary sibling first and is renamed into place only once complete.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace tallrec {

// Reads a whole file; throws InputError naming the path when it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// Writes `content` to a temporary sibling, fsyncs it, and renames it over `path`. `mode` is the
// new file's permission bits (0600 for secrets: never readable by others, not even briefly).
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           unsigned mode = 0644);

// A directory built in a temporary sibling and moved into place by commit(). If the object
// is destroyed before commit() (an exception, a failed check), the temporary tree is removed
// and any existing directory at `final_path` is left untouched.
class StagedDirectory {
 public:
  explicit StagedDirectory(std::filesystem::path final_path);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  // Where to write the files now.
  const std::filesystem::path& path() const { return staging_; }
  // Replaces `final_path` with the staged tree (the old one, if any, is removed afterwards).
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path staging_;
  bool committed_ = false;
};

}  // namespace tallrec
