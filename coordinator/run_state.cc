#include "coordinator/run_state.h"

#include <vector>

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

std::string run_state_names(bool (*which)(RunState)) {
  std::vector<const char*> names;
  for (RunState state : kAllRunStates)
    if (!which || which(state)) names.push_back(run_state_name(state));
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

const char* attempt_state_name(AttemptState s) {
  switch (s) {
    case AttemptState::kLeased:
      return "leased";
    case AttemptState::kRunning:
      return "running";
    case AttemptState::kSucceeded:
      return "succeeded";
    case AttemptState::kFailed:
      return "failed";
    case AttemptState::kLost:
      return "lost";
    case AttemptState::kPreempted:
      return "preempted";
    case AttemptState::kCanceled:
      return "canceled";
    case AttemptState::kReleased:
      return "released";
  }
  return "?";
}

}  // namespace tallrec
