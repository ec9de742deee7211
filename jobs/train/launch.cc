// Starting the ranks of a data-parallel run as child processes of tallrec-train.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

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
      // A rank dies with its launcher (a cancelled or killed run). SIGKILL, not SIGTERM: that now
      // asks for a checkpoint at the next step, and an orphan would hold its GPU until then.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl(self.c_str(), self.c_str(), "train", "--spec", spec_path.c_str(), "--out",
              out.c_str(), "--rank", rank.c_str(), "--rendezvous", store.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    children.push_back(pid);
  }
  int result = 0;
  int forwarded = 0;
  std::vector<pid_t> running = children;
  // After a rank failed, the others get a moment to report their own failure (rank 0 writes the
  // events: killed at once, a run whose every rank fails at setup could end without its `failed`
  // event), then they are killed: in a collective they would wait for the failed rank forever.
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  while (!running.empty()) {
    // A stop signal (preemption.h), also one that came before this wait: every rank checkpoints
    // and stops. The signal interrupts wait() (no SA_RESTART here).
    if (const int sig = preemption_signal(); sig != 0 && sig != forwarded) {
      for (pid_t c : running) ::kill(c, sig);
      forwarded = sig;
    }
    if (kill_at && Clock::now() >= *kill_at) {
      for (pid_t c : running) ::kill(c, SIGKILL);
      kill_at.reset();
    }
    int status = 0;
    const pid_t pid = kill_at ? ::waitpid(-1, &status, WNOHANG) : ::wait(&status);
    if (pid == 0) {  // the others are still going: look again shortly
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    running.erase(std::remove(running.begin(), running.end(), pid), running.end());
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == kPreemptedExitCode && result == 0) {
      result = code;  // the others stop at the same step boundary on their own
    } else if (code != 0 && (result == 0 || result == kPreemptedExitCode)) {
      result = code;
      kill_at = Clock::now() + std::chrono::seconds(2);
    }
  }
  std::error_code ec;
  fs::remove(rendezvous, ec);
  return result;
}

}  // namespace tallrec
