// The queue: runs and their attempts, and every transition between their states
// (coordinator/run_state.h), one transaction each. `now` is seconds since the epoch.
//
// A lease on a run is an attempt: the worker holds it while heartbeats renew it. Every message
// about the attempt carries its id; a stale id (the lease expired, the run was cancelled or
// re-leased) is refused, so a zombie worker can change nothing (fencing). Each transition also
// appends to the change feed (coordinator/change_feed.h) in the same transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/grid.h"
#include "coordinator/retry_policy.h"

struct sqlite3;

namespace tallrec {

class Database;

struct SubmitResult {
  int64_t sweep_id;
  bool new_sweep;
  size_t added, existing;  // runs new to the store / already there (same key)
};

struct Lease {
  int64_t attempt_id;
  int64_t run_id;
  std::string run_key;
  nlohmann::json spec;     // the resolved run spec, as stored
  int64_t attempt_number;  // 1 for the first try
  double lease_until;
  // Set once an out-of-memory halved them (Queue::end_reported); the worker overrides the spec's.
  std::optional<int64_t> micro_batch_size, eval_batch_size;
};

class Queue {
 public:
  explicit Queue(Database& database);

  // Adds the grid's sweep (by name) and its runs in one transaction; runs already stored
  // (same key, from this or another sweep) are linked, not duplicated.
  SubmitResult submit(const Grid& grid);

  // The highest-priority queued run whose backoff has passed becomes leased to `worker`, which
  // must be in the worker registry already (coordinator/worker_registry.h: ensure_known).
  std::optional<Lease> lease_next(const std::string& worker, double now,
                                  const RetryPolicy& policy = {});
  // Queued runs whose backoff has passed at `now`: what a free worker would be leased.
  int64_t count_ready_runs(double now);
  // False (and nothing changes) when the attempt is not the run's live attempt any more.
  bool heartbeat(int64_t attempt_id, double now, const RetryPolicy& policy = {});
  bool mark_running(int64_t attempt_id, double now);
  // Stores event `seq` of a live attempt once (a re-sent duplicate is accepted and ignored);
  // progress and eval events also become metric rows, and `started` marks the run running.
  // False if the attempt is stale.
  bool record_event(int64_t attempt_id, int64_t seq, const nlohmann::json& event);

  // How attempts end (the rules: coordinator/attempt_end.h). Each is false (and changes nothing)
  // when the attempt is stale.
  bool finish(int64_t attempt_id, const nlohmann::json& result, double now);
  // A failed attempt, as attempt_failed(): queued again after a backoff, or failed.
  bool fail(int64_t attempt_id, const std::string& reason, bool retryable, double now,
            const RetryPolicy& policy = {});
  // The worker's DONE for an attempt: how it ended is decide_attempt_end() of its last outcome
  // event and the trainer's exit code.
  bool end_reported(int64_t attempt_id, int exit_code, const std::string& stderr_tail, double now,
                    const RetryPolicy& policy = {});
  // Leases past their time are lost: each such run is failed or queued again as by attempt_failed.
  // Returns the number of attempts expired.
  int expire_leases(double now, const RetryPolicy& policy = {});
  // Leases of `worker` older than `leased_before` that it does not list as running (a LEASE lost
  // on the way, or one it could not take) go back to the queue at once, without costing the run
  // an attempt. Returns how many.
  int release_unlisted(const std::string& worker, const std::vector<int64_t>& listed,
                       double leased_before, double now);

  // What a user does to a run. cancel: an unfinished run ends canceled (its live attempt too).
  // retry: a failed or cancelled run goes back to the queue with a fresh attempt budget and a
  // fresh preemption count (a micro-batch an out-of-memory halved stays halved).
  bool cancel(int64_t run_id, double now);
  bool retry(int64_t run_id, double now);

  // The worker id that leased the attempt ("" when there is no such attempt): messages about an
  // attempt are taken only from its holder (docs/dev/design.md, Coordinator).
  std::string attempt_holder(int64_t attempt_id);
  // The run (id, key) of a live attempt, or nullopt when the attempt is stale.
  std::optional<std::pair<int64_t, std::string>> live_attempt(int64_t attempt_id);

 private:
  // The attempt's last stored `finished`, `failed` or `preempted` event, or null.
  nlohmann::json last_outcome(int64_t attempt_id);
  sqlite3* db_;
  const std::string& path_;
};

}  // namespace tallrec
