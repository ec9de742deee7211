#include "cli/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

#include <cstdio>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

struct Download {
  std::ofstream file;
  Sha256 hash;
  size_t bytes = 0;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* d = static_cast<Download*>(user);
  d->file.write(data, std::streamsize(size * count));
  d->hash.update(data, size * count);
  d->bytes += size * count;
  return d->file ? size * count : 0;
}

// Removes a file when it goes out of scope (the temporary archive).
struct FileRemover {
  fs::path path;
  ~FileRemover() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

std::string download(const std::string& url, const fs::path& to, size_t& bytes) {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == 0;
  if (!curl_ready) throw Error("libcurl failed to initialise");
  Download d;
  d.file.open(to, std::ios::binary | std::ios::trunc);
  if (!d.file) throw Error(to.string() + ": cannot create");
  CURL* curl = curl_easy_init();
  if (!curl) throw Error("libcurl: cannot create a handle");
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);  // abort below 1 KiB/s ...
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);     // ... sustained for a minute
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "tallrec");
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  d.file.close();
  if (rc != CURLE_OK) {
    throw Error("download of " + url + " failed: " + (error[0] ? error : curl_easy_strerror(rc)));
  }
  if (!d.file) throw Error(to.string() + ": write failed");
  bytes = d.bytes;
  return d.hash.hex_digest();
}

// Unpacks entries under "ml-100k/" into `dest`, refusing absolute paths and "..".
void unpack(const fs::path& archive_path, const fs::path& dest) {
  struct archive* a = archive_read_new();
  archive_read_support_format_zip(a);
  archive_read_support_filter_all(a);
  if (archive_read_open_filename(a, archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::string why = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    throw InputError(archive_path.string() + ": not a readable zip archive: " + why);
  }
  const std::string prefix = "ml-100k/";
  size_t files = 0;
  struct archive_entry* entry;
  int status;
  while ((status = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    fs::path rel = fs::path(name).lexically_normal();
    if (rel.is_absolute() || name.rfind(prefix, 0) != 0 ||
        rel.string().find("..") != std::string::npos) {
      archive_read_free(a);
      throw InputError(archive_path.string() + ": unexpected entry \"" + name +
                       "\" (expected everything under ml-100k/)");
    }
    fs::path target = dest / fs::path(name.substr(prefix.size()));
    if (archive_entry_filetype(entry) == AE_IFDIR) {
      fs::create_directories(target);
      continue;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;  // no links or devices
    fs::create_directories(target.parent_path());
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    const void* buf;
    size_t size;
    la_int64_t offset;
    while ((status = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
      out.write(static_cast<const char*>(buf), std::streamsize(size));
    }
    if (status != ARCHIVE_EOF || !out) {
      std::string why = archive_error_string(a) ? archive_error_string(a) : "write failed";
      archive_read_free(a);
      throw InputError(archive_path.string() + ": cannot unpack \"" + name + "\": " + why);
    }
    ++files;
  }
  std::string why =
      status == ARCHIVE_EOF ? "" : (archive_error_string(a) ? archive_error_string(a) : "?");
  archive_read_free(a);
  if (status != ARCHIVE_EOF) throw InputError(archive_path.string() + ": corrupt archive: " + why);
  if (files == 0) throw InputError(archive_path.string() + ": archive has no files under ml-100k/");
}

}  // namespace

fs::path fetch_movielens_100k(const fs::path& out_dir, const FetchOptions& options) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir.string() + ": cannot create directory: " + ec.message());
  const fs::path final_dir = out_dir / "ml-100k";
  StagedDirectory staged(final_dir);
  FileRemover archive{staged.path().string() + ".zip"};

  if (options.progress) options.progress("downloading " + options.url);
  size_t bytes = 0;
  std::string digest = download(options.url, archive.path, bytes);
  if (digest != options.sha256) {
    throw InputError("checksum mismatch for " + options.url + ": SHA-256 is " + digest +
                     ", expected " + options.sha256 +
                     " (download corrupted or archive changed upstream)");
  }
  if (options.progress)
    options.progress("verified " + std::to_string(bytes) + " bytes, SHA-256 " + digest);
  unpack(archive.path, staged.path());
  if (!fs::exists(staged.path() / "u.data") || !fs::exists(staged.path() / "u.item")) {
    throw InputError(options.url + ": archive lacks ml-100k/u.data or ml-100k/u.item");
  }
  staged.commit();
  if (options.progress) options.progress("unpacked into " + final_dir.string());
  return final_dir;
}

}  // namespace tallrec
