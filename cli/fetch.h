// Downloading the raw MovieLens-100K archive. GroupLens' terms forbid redistributing it, so
// tallrec never ships it: users fetch the official archive, whose SHA-256 we pin.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace tallrec {

inline constexpr const char* kMovieLens100kUrl =
    "https://files.grouplens.org/datasets/movielens/ml-100k.zip";
// SHA-256 of the official ml-100k.zip (4,924,029 bytes; GroupLens publishes its MD5,
// 0e33842e24a9c977be4e0107933c0723).
inline constexpr const char* kMovieLens100kSha256 =
    "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229";

struct FetchOptions {
  std::string url = kMovieLens100kUrl;
  std::string sha256 = kMovieLens100kSha256;
  std::function<void(const std::string&)> progress = nullptr;  // human-readable status lines
};

// Downloads the archive (libcurl), checks its SHA-256 and unpacks its `ml-100k/` folder into
// `out_dir`/ml-100k. Nothing is left behind on failure: the archive is downloaded to a temporary
// file and the folder is staged and renamed into place. Returns the unpacked folder.
std::filesystem::path fetch_movielens_100k(const std::filesystem::path& out_dir,
                                           const FetchOptions& options);

}  // namespace tallrec
