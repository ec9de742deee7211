#include "jobs/train/preemption.h"

#include <csignal>

namespace tallrec {
namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_preemption_signal(int sig) { g_signal = sig; }
}  // namespace

void install_preemption_handlers(bool interrupt_waits) {
  struct sigaction a = {};
  a.sa_handler = on_preemption_signal;
  sigemptyset(&a.sa_mask);
  a.sa_flags = interrupt_waits ? 0 : SA_RESTART;
  sigaction(SIGTERM, &a, nullptr);
  sigaction(SIGUSR1, &a, nullptr);
}

int preemption_signal() { return int(g_signal); }

}  // namespace tallrec
