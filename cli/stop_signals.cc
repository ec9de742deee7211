#include "cli/stop_signals.h"

#include <csignal>

namespace tallrec {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  g_stop = true;
}
}  // namespace

const std::atomic<bool>& stop_on_signals(bool also_sigusr1) {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  if (also_sigusr1) std::signal(SIGUSR1, on_stop_signal);
  return g_stop;
}

const std::atomic<int>& stop_signal() { return g_signal; }

}  // namespace tallrec
