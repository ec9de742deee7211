#include "coordinator/run_state.h"

namespace tallrec {

const char* run_state_name(RunState s) {
  switch (s) {
    case RunState::kQueued:
      return "queued";
    case RunState::kLeased:
      return "leased";
    case RunState::kRunning:
      return "running";
    case RunState::kSucceeded:
      return "succeeded";
    case RunState::kFailed:
      return "failed";
    case RunState::kCanceled:
      return "canceled";
  }
  return "?";
}

std::optional<RunState> parse_run_state(std::string_view name) {
  for (RunState s : kAllRunStates)
    if (name == run_state_name(s)) return s;
  return std::nullopt;
}

std::string run_state_names() {
  std::string out;
  for (size_t i = 0; i < kAllRunStates.size(); ++i) {
    if (i) out += i + 1 == kAllRunStates.size() ? " or " : ", ";
    out += run_state_name(kAllRunStates[i]);
  }
  return out;
}

std::string sql_state(RunState s) { return std::string("'") + run_state_name(s) + "'"; }

}  // namespace tallrec
