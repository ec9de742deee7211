// Running a command: a short-lived one (sbatch, squeue, scancel) collecting what it printed, or
// a long-lived one started and waited for later (the demo's workers). The command is exec'd
// directly (no shell), so its arguments are never re-parsed.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace tallrec {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed; 127 when the program could not be started
  std::string out, err;
  bool timed_out = false;
};

// Runs argv[0] (looked up in PATH) with `input` on its stdin; kills it after `timeout_seconds`.
// Each of stdout and stderr is kept up to `max_bytes`. Throws Error only when it cannot fork.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          double timeout_seconds = 30, size_t max_bytes = 1 << 20);

// Starts argv[0] (looked up in PATH) reading /dev/null, its stdout and stderr appended to `log`
// (created if needed; empty: /dev/null), and returns at once with its pid. Throws Error when
// it cannot fork or open `log`.
pid_t start_process(const std::vector<std::string>& argv, const std::filesystem::path& log = {});

// Waits for a started process; its exit code as ProcessResult's (128 + signal when killed, 127
// when it could not be started).
int wait_process(pid_t pid);

}  // namespace tallrec
