// Starting the ranks of a data-parallel run as child processes of tallrec-train.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/error.h"
#include "jobs/train/preemption.h"
#include "jobs/train/trainer.h"

namespace tallrec {
namespace fs = std::filesystem;

int launch_ranks(const std::string& self, const std::string& spec_path, const RunSpec& spec,
                 const fs::path& out_dir) {
  fs::create_directories(out_dir);
  const fs::path rendezvous = out_dir / (".rendezvous-" + std::to_string(::getpid()));
  fs::remove(rendezvous);
  std::vector<pid_t> children;
  for (int r = 0; r < spec.world_size; ++r) {
    const std::string rank = std::to_string(r), store = rendezvous.string(), out = out_dir.string();
    pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG,
              SIGTERM);  // a rank dies with its launcher (a cancelled or killed run)
      ::execl(self.c_str(), self.c_str(), "train", "--spec", spec_path.c_str(), "--out",
              out.c_str(), "--rank", rank.c_str(), "--rendezvous", store.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    children.push_back(pid);
  }
  int result = 0;
  for (size_t left = children.size(); left > 0; --left) {
    int status = 0;
    pid_t pid = ::wait(&status);
    if (pid < 0 && errno == EINTR) {
      // A stop signal (preemption.h) interrupted the wait: every rank checkpoints and stops.
      ++left;
      if (const int sig = preemption_signal())
        for (pid_t c : children) ::kill(c, sig);
      continue;
    }
    if (pid < 0) break;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == kPreemptedExitCode && result == 0) {
      result = code;  // the others stop at the same step boundary on their own
    } else if (code != 0 && (result == 0 || result == kPreemptedExitCode)) {
      result = code;
      for (pid_t c : children)
        if (c != pid)
          ::kill(c, SIGKILL);  // the others would wait for it forever (and SIGTERM
                               // now asks them to checkpoint first)
    }
  }
  std::error_code ec;
  fs::remove(rendezvous, ec);
  return result;
}

}  // namespace tallrec
