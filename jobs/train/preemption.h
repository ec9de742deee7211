// Preemption as a normal event. Slurm (scancel, scontrol requeue, a preempting job, the time
// limit's warning signal) and the worker agent stop a trainer with SIGTERM or SIGUSR1. The
// handler only sets a flag (no I/O in a signal handler: PyTorch Lightning's users learned why);
// the training loop looks at it at each optimizer-step boundary, writes a full checkpoint there
// and exits with kPreemptedExitCode after a `preempted` event. At most the optimizer step in
// flight when the signal came is computed again on resume.
#pragma once

#include "common/exit_codes.h"  // kPreemptedExitCode

namespace tallrec {

// Installs the SIGTERM and SIGUSR1 handlers (idempotent). `interrupt_waits`: system calls are not
// restarted (the rank launcher's wait() must return to forward the signal); elsewhere they are,
// so that a signal never breaks a write of an event line.
void install_preemption_handlers(bool interrupt_waits = false);
// The signal that asked to stop (SIGTERM or SIGUSR1), or 0 when none has come.
int preemption_signal();

}  // namespace tallrec
