#include "worker/trainer_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace tallrec {
namespace fs = std::filesystem;

fs::path find_trainer() {
  const fs::path beside = fs::read_symlink("/proc/self/exe").parent_path() / "tallrec-train";
  if (::access(beside.c_str(), X_OK) == 0) return beside;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const fs::path dir = dirs.substr(start, end - start);
    const fs::path candidate = (dir.empty() ? fs::path(".") : dir) / "tallrec-train";
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return fs::absolute(candidate);
    start = end + 1;
  }
  throw Error("tallrec-train: not beside " + beside.parent_path().string() +
              "/tallrec and not on PATH (install both with `cmake --install`, docs/install.md)");
}

TrainerProcess::TrainerProcess(const fs::path& spec, const fs::path& run_dir,
                               const std::string& visible_devices)
    : stderr_file_(run_dir / "trainer.stderr") {
  const fs::path trainer = find_trainer();
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw Error("cannot start " + trainer.string() + ": pipe failed");
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed (this process has ZeroMQ's threads).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (visible_devices.empty() || std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0)
      env_strings.push_back(*e);
  if (!visible_devices.empty()) env_strings.push_back("CUDA_VISIBLE_DEVICES=" + visible_devices);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string spec_arg = spec.string(), out_arg = run_dir.string(),
                    trainer_arg = trainer.string();
  const char* argv[] = {trainer_arg.c_str(), "train", "--spec", spec_arg.c_str(), "--out",
                        out_arg.c_str(),     nullptr};
  const std::string err_path = stderr_file_.string();
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw Error("cannot start " + trainer.string() + ": fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the worker died before prctl took effect
    ::dup2(pipe_fds[1], 1);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) ::dup2(err, 2);
    ::close(pipe_fds[0]);
    ::execve(trainer_arg.c_str(), const_cast<char* const*>(argv), envp.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  out_ = pipe_fds[0];
}

TrainerProcess::~TrainerProcess() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) ::close(out_);
}

std::vector<std::string> TrainerProcess::read_lines() {
  std::vector<std::string> lines;
  if (out_ < 0) return lines;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(out_, buf, sizeof buf)) > 0) partial_.append(buf, size_t(n));
  for (size_t nl; (nl = partial_.find('\n')) != std::string::npos;) {
    lines.push_back(partial_.substr(0, nl));
    partial_.erase(0, nl + 1);
  }
  return lines;
}

bool TrainerProcess::finished() {
  if (!exited_) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exited_ = true;
    if (WIFSIGNALED(status)) {
      signal_ = WTERMSIG(status);
      exit_code_ = 128 + *signal_;
    } else {
      exit_code_ = WEXITSTATUS(status);
    }
    return false;  // the caller reads the pipe once more before it hears "finished"
  }
  return true;
}

void TrainerProcess::terminate(std::chrono::seconds grace, int signal) {
  if (exited_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!terminated_at_) {
    terminated_at_ = now;
    ::kill(pid_, signal);
  } else if (now - *terminated_at_ >= grace) {
    ::kill(pid_, SIGKILL);
  }
}

std::string TrainerProcess::stderr_tail(size_t bytes) const {
  std::ifstream in(stderr_file_);
  std::stringstream s;
  s << in.rdbuf();
  const std::string all = s.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

}  // namespace tallrec
