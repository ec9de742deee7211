// Running a short-lived command (sbatch, squeue, scancel) and collecting what it printed. The
// command is exec'd directly (no shell), so its arguments are never re-parsed.
#pragma once

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

}  // namespace tallrec
