// Ctrl-C and SIGTERM for the commands that serve until told to stop (coordinator, worker, demo).
#pragma once

#include <atomic>

namespace tallrec {

// Installs SIGINT and SIGTERM handlers (and SIGUSR1's when asked) that set the returned flag,
// and returns it.
const std::atomic<bool>& stop_on_signals(bool also_sigusr1 = false);
// The signal that set the flag (0 before any).
const std::atomic<int>& stop_signal();

}  // namespace tallrec
