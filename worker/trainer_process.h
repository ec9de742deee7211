// One tallrec-train process run by the worker: stdout is a pipe of JSON event lines, stderr goes
// to a file in the run folder (its tail is reported when the trainer fails). The trainer dies
// with the worker (PR_SET_PDEATHSIG), so a killed worker leaves no orphan training on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tallrec {

// The `tallrec-train` to run: the one beside this executable (a build folder, or an install
// prefix's bin/), else the first executable one on PATH. Error naming both places when neither
// has it.
std::filesystem::path find_trainer();

class TrainerProcess {
 public:
  // Starts `find_trainer() train --spec SPEC --out RUN_DIR`, with CUDA_VISIBLE_DEVICES set to
  // `visible_devices` when that is not empty.
  TrainerProcess(const std::filesystem::path& spec, const std::filesystem::path& run_dir,
                 const std::string& visible_devices = "");
  ~TrainerProcess();  // kills and reaps a trainer still running
  TrainerProcess(const TrainerProcess&) = delete;
  TrainerProcess& operator=(const TrainerProcess&) = delete;

  // The whole lines written to stdout since the last call (never blocks).
  std::vector<std::string> read_lines();
  // True once the process has exited and its stdout is drained.
  bool finished();
  // `signal` (SIGTERM, or SIGUSR1: both make it checkpoint and stop) on the first call, SIGKILL
  // on a call `grace` or more after the first.
  void terminate(std::chrono::seconds grace, int signal = SIGTERM);

  // Valid once finished(): the exit code (128 + signal when killed), the signal or nullopt.
  int exit_code() const { return exit_code_; }
  std::optional<int> signal() const { return signal_; }
  std::string stderr_tail(size_t bytes) const;

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string partial_;
  bool exited_ = false;
  int exit_code_ = -1;
  std::optional<int> signal_;
  std::filesystem::path stderr_file_;
  std::optional<std::chrono::steady_clock::time_point> terminated_at_;
};

}  // namespace tallrec
