// Where tests find the repository, the shared data and a scratch folder.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace tallrec::test {

inline std::filesystem::path source_dir() { return TALLREC_SOURCE_DIR; }
inline std::filesystem::path shared_dir() { return TALLREC_SHARED_DIR; }
inline std::filesystem::path tokenizer_model() {
  return shared_dir() / "models" / "llama-tokenizer" / "tokenizer.model";
}

// A fresh, empty folder per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("tallrec-test-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace tallrec::test
