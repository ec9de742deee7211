#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "common/error.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

std::string unique_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream s;
  s << ".tmp-" << getpid() << "-" << std::hex << rng();
  return s.str();
}

void throw_errno(const std::string& what, const fs::path& path) {
  throw Error(path.string() + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) throw InputError(path.string() + ": no such file");
    throw InputError(path.string() + ": cannot open for reading");
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read error");
  return s.str();
}

void write_file_atomically(const fs::path& path, std::string_view content, unsigned mode) {
  fs::path tmp = path;
  tmp += unique_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("cannot create", tmp);
  ::fchmod(fd, mode);  // the umask may have taken bits away; these are the ones asked for
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      throw_errno("write failed", tmp);
    }
    p += n;
    left -= size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw_errno("cannot flush", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    throw_errno("cannot rename into place", path);
  }
}

StagedDirectory::StagedDirectory(fs::path final_path) : final_(std::move(final_path)) {
  if (final_.filename().empty()) final_ = final_.parent_path();  // "out/" -> "out"
  fs::path parent = final_.parent_path().empty() ? fs::path(".") : final_.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error(parent.string() + ": cannot create directory: " + ec.message());
  staging_ = parent / (final_.filename().string() + unique_suffix());
  fs::create_directory(staging_, ec);
  if (ec) throw Error(staging_.string() + ": cannot create directory: " + ec.message());
}

StagedDirectory::~StagedDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void StagedDirectory::commit() {
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_)) {
    old = final_;
    old += unique_suffix();
    fs::rename(final_, old, ec);
    if (ec) throw Error(final_.string() + ": cannot move the old output aside: " + ec.message());
  }
  fs::rename(staging_, final_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, final_, ec);
    throw Error(final_.string() + ": cannot move output into place");
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace tallrec
