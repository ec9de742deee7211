// Ctrl-C and SIGTERM for the commands that serve until told to stop (coordinator, worker, demo).
#pragma once

#include <atomic>

namespace tallrec {

// Installs SIGINT and SIGTERM handlers that set the returned flag, and returns it.
const std::atomic<bool>& stop_on_signals();

}  // namespace tallrec
