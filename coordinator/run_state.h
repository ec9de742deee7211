// The states of a run, spelled once. The store's column, the CLI's --state, the HTTP API's
// `state` fields (schemas/openapi.json) and the dashboard (web-ui-static/app.js) use these
// names; tests/unit/schema_test.cc checks that the last two list the same.
//   queued -> leased -> running -> succeeded | failed (-> queued while attempts remain)
//   queued | leased | running -> canceled;  failed | canceled -> queued (retry)
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace tallrec {

enum class RunState { kQueued, kLeased, kRunning, kSucceeded, kFailed, kCanceled };

inline constexpr std::array<RunState, 6> kAllRunStates = {RunState::kQueued,  RunState::kLeased,
                                                          RunState::kRunning, RunState::kSucceeded,
                                                          RunState::kFailed,  RunState::kCanceled};

// "queued", "leased", "running", "succeeded", "failed", "canceled".
const char* run_state_name(RunState s);
// The state of a name; nullopt for anything else.
std::optional<RunState> parse_run_state(std::string_view name);
// "queued, leased, running, succeeded, failed or canceled", for error messages; only the states
// `which` holds for when given (run_state_names(is_retryable): "failed or canceled").
std::string run_state_names(bool (*which)(RunState) = nullptr);

// Not finished yet: a cancel applies, progress counts it as open.
inline bool is_unfinished(RunState s) {
  return s == RunState::kQueued || s == RunState::kLeased || s == RunState::kRunning;
}
// Finished without success: a retry applies.
inline bool is_retryable(RunState s) { return s == RunState::kFailed || s == RunState::kCanceled; }

// The states of one attempt (a lease on a run), spelled once for the store and the API:
//   leased -> running -> succeeded | failed | lost (lease expired) | preempted (checkpointed
//   and stopped on a signal: the run is queued again at once, its attempt budget unspent)
//   leased | running -> canceled (the run was cancelled) | released (its LEASE never arrived)
enum class AttemptState {
  kLeased,
  kRunning,
  kSucceeded,
  kFailed,
  kLost,
  kPreempted,
  kCanceled,
  kReleased
};

inline constexpr std::array<AttemptState, 8> kAllAttemptStates = {
    AttemptState::kLeased,   AttemptState::kRunning, AttemptState::kSucceeded,
    AttemptState::kFailed,   AttemptState::kLost,    AttemptState::kPreempted,
    AttemptState::kCanceled, AttemptState::kReleased};

const char* attempt_state_name(AttemptState s);

}  // namespace tallrec
