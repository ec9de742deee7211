// Exit codes that cross a process boundary (tallrec-train -> the worker -> the queue), named once.
#pragma once

namespace tallrec {

// Bad input (a spec, data or model files the trainer refuses): not worth retrying.
inline constexpr int kBadInputExitCode = 2;
// EX_TEMPFAIL (sysexits.h): stopped on request with everything saved; run it again to go on.
inline constexpr int kPreemptedExitCode = 75;

}  // namespace tallrec
