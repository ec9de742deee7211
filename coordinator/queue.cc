#include "coordinator/queue.h"

#include <sqlite3.h>

#include <algorithm>

#include "common/clock.h"
#include "common/error.h"
#include "common/train_events.h"
#include "coordinator/attempt_end.h"
#include "coordinator/database.h"
#include "coordinator/run_state.h"
#include "coordinator/store_sql.h"

namespace tallrec {

Queue::Queue(Database& database) : db_(database.handle()), path_(database.path()) {}

SubmitResult Queue::submit(const Grid& grid) {
  return in_transaction(db_, path_, [&] {
    SubmitResult r{0, false, 0, 0};
    const double t = unix_time();
    Statement find(db_, "SELECT id FROM sweeps WHERE name = ?", path_);
    find.bind(1, grid.name);
    if (find.step()) {
      r.sweep_id = find.integer(0);
    } else {
      Statement add(
          db_,
          "INSERT INTO sweeps (name, grid, priority, max_attempts, created) VALUES (?, ?, ?, ?, ?)",
          path_);
      add.bind(1, grid.name)
          .bind(2, grid.document.dump())
          .bind(3, grid.priority)
          .bind(4, grid.max_attempts)
          .bind(5, t);
      add.step();
      r.sweep_id = sqlite3_last_insert_rowid(db_);
      r.new_sweep = true;
    }
    Statement insert(db_,
                     "INSERT INTO runs (key, spec, state, domain, sample, seed, priority, "
                     "max_attempts, created, updated) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                     path_);
    Statement id_of(db_, "SELECT id FROM runs WHERE key = ?", path_);
    Statement link(db_, "INSERT OR IGNORE INTO sweep_runs (sweep_id, run_id) VALUES (?, ?)", path_);
    for (const auto& run : grid.runs) {
      insert.bind(1, run.key)
          .bind(2, run.spec.dump())
          .bind(3, RunState::kQueued)
          .bind(4, run.domain)
          .bind(5, run.sample)
          .bind(6, int64_t(run.seed))
          .bind(7, grid.priority)
          .bind(8, grid.max_attempts)
          .bind(9, t)
          .bind(10, t);
      insert.step();
      const bool added = sqlite3_changes(db_) > 0;
      insert.reset();
      (added ? r.added : r.existing)++;
      id_of.bind(1, run.key);
      id_of.step();
      const int64_t run_id = id_of.integer(0);
      id_of.reset();
      link.bind(1, r.sweep_id).bind(2, run_id);
      link.step();
      link.reset();
    }
    add_change(
        db_, path_, "sweep",
        {{"sweep", r.sweep_id}, {"name", grid.name}, {"added", r.added}, {"existing", r.existing}},
        t);
    return r;
  });
}

namespace {

// One transition: a run's new state and, with it, its attempt's, both rows and the change feed's
// entry, inside the caller's transaction. Every change of state in the queue is one of these.
struct Transition {
  int64_t run = 0;
  RunState run_state = RunState::kQueued;
  int64_t attempt = 0;  // the attempt that moves with the run; 0: none does
  AttemptState attempt_state = AttemptState::kLeased;
  std::optional<std::string> reason;  // why the attempt ended
  std::optional<int64_t> exit_code;
  std::string worker;  // a lease: its holder, for the feed
  // The run's columns that move with its state: attempts spent (+1 a lease, -1 an attempt given
  // back), when a queued run may be leased again, a success's `finished` event, preemptions
  // added, and the batch sizes an out-of-memory halved.
  int64_t attempts_spent = 0;
  std::optional<double> not_before;
  std::optional<std::string> result;
  int64_t preemptions = 0;
  std::optional<int64_t> micro_batch_size, eval_batch_size;
};

bool has_ended(AttemptState s) { return s != AttemptState::kLeased && s != AttemptState::kRunning; }

void apply(sqlite3* db, const std::string& path, const Transition& x, double t) {
  const bool ended = x.attempt && has_ended(x.attempt_state);
  if (x.attempt) {
    Statement a(db,
                "UPDATE attempts SET state = ?, ended = COALESCE(?, ended), reason = COALESCE(?, "
                "reason), exit_code = COALESCE(?, exit_code) WHERE id = ?",
                path);
    a.bind(1, x.attempt_state).bind(5, x.attempt);
    if (ended) a.bind(2, t);
    if (x.reason) a.bind(3, *x.reason);
    if (x.exit_code) a.bind(4, *x.exit_code);
    a.step();
  }
  Statement r(db,
              "UPDATE runs SET state = ?, updated = ?, attempts = attempts + ?, not_before = "
              "COALESCE(?, not_before), result = COALESCE(?, result), preemptions = preemptions + "
              "?, micro_batch_size = COALESCE(?, micro_batch_size), eval_batch_size = COALESCE(?, "
              "eval_batch_size) WHERE id = ?",
              path);
  r.bind(1, x.run_state).bind(2, t).bind(3, x.attempts_spent).bind(6, x.preemptions).bind(9, x.run);
  if (x.not_before) r.bind(4, *x.not_before);
  if (x.result) r.bind(5, *x.result);
  if (x.micro_batch_size) r.bind(7, *x.micro_batch_size);
  if (x.eval_batch_size) r.bind(8, *x.eval_batch_size);
  r.step();
  nlohmann::json change = {{"run", x.run}, {"state", run_state_name(x.run_state)}};
  if (x.attempt) change["attempt"] = x.attempt;
  if (!x.worker.empty()) change["worker"] = x.worker;
  if (ended && x.attempt_state != AttemptState::kSucceeded)
    change["attempt_state"] = attempt_state_name(x.attempt_state);
  if (x.reason) change["reason"] = *x.reason;
  add_change(db, path, "run", change, t);
}

// Attempt `attempt` of run `run` ended as `end` decided.
void apply_end(sqlite3* db, const std::string& path, int64_t attempt, int64_t run,
               const AttemptEnd& end, double t) {
  Transition x;
  x.run = run;
  x.run_state = end.run;
  x.attempt = attempt;
  x.attempt_state = end.attempt;
  if (end.attempt == AttemptState::kSucceeded) {
    x.exit_code = 0;
    x.result = end.result.dump();
  } else {
    x.reason = end.reason;
  }
  if (end.attempt_given_back) {
    x.attempts_spent = -1;
    x.not_before = 0.0;
  } else if (end.run == RunState::kQueued) {
    x.not_before = t + end.backoff_seconds;
  }
  x.preemptions = end.preempted ? 1 : 0;
  x.micro_batch_size = end.micro_batch_size;
  x.eval_batch_size = end.eval_batch_size;
  apply(db, path, x, t);
}

// Where run `run` stands, for attempt_end.h's rules.
RunSoFar run_so_far(sqlite3* db, const std::string& path, int64_t run) {
  Statement q(db,
              "SELECT attempts, max_attempts, preemptions, json_extract(spec, '$.batch_size'), "
              "json_extract(spec, '$.micro_batch_size'), json_extract(spec, '$.eval_batch_size'), "
              "micro_batch_size, eval_batch_size FROM runs WHERE id = ?",
              path);
  q.bind(1, run).step();
  auto column = [&](int c) { return q.is_null(c) ? std::nullopt : std::optional(q.integer(c)); };
  RunSoFar r;
  r.attempts = q.integer(0);
  r.max_attempts = q.integer(1);
  r.preemptions = q.integer(2);
  r.batch_size = column(3);
  r.micro_batch_size = column(4);
  r.eval_batch_size = column(5);
  r.halved_micro_batch_size = column(6);
  r.halved_eval_batch_size = column(7);
  return r;
}

}  // namespace

std::optional<Lease> Queue::lease_next(const std::string& worker, double t,
                                       const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&]() -> std::optional<Lease> {
    Statement pick(
        db_,
        "SELECT id, key, spec, attempts, micro_batch_size, eval_batch_size FROM runs WHERE state = "
        "? AND not_before <= ? ORDER BY priority DESC, id LIMIT 1",
        path_);
    pick.bind(1, RunState::kQueued).bind(2, t);
    if (!pick.step()) return std::nullopt;
    Lease l{0,
            pick.integer(0),
            pick.text(1),
            nlohmann::json::parse(pick.text(2)),  // written by submit from a parsed grid
            pick.integer(3) + 1,
            t + policy.lease_seconds,
            pick.is_null(4) ? std::nullopt : std::optional<int64_t>(pick.integer(4)),
            pick.is_null(5) ? std::nullopt : std::optional<int64_t>(pick.integer(5))};
    Statement add(db_,
                  "INSERT INTO attempts (run_id, worker_id, state, lease_until, started, "
                  "micro_batch_size, eval_batch_size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  path_);
    add.bind(1, l.run_id)
        .bind(2, worker)
        .bind(3, AttemptState::kLeased)
        .bind(4, l.lease_until)
        .bind(5, t);
    if (l.micro_batch_size) add.bind(6, *l.micro_batch_size);
    if (l.eval_batch_size) add.bind(7, *l.eval_batch_size);
    add.step();
    l.attempt_id = sqlite3_last_insert_rowid(db_);
    Transition x;
    x.run = l.run_id;
    x.run_state = RunState::kLeased;
    x.attempt = l.attempt_id;
    x.attempt_state = AttemptState::kLeased;
    x.worker = worker;
    x.attempts_spent = 1;
    apply(db_, path_, x, t);
    return l;
  });
}

int64_t Queue::count_ready_runs(double t) {
  Statement s(db_, "SELECT COUNT(*) FROM runs WHERE state = ? AND not_before <= ?", path_);
  s.bind(1, RunState::kQueued).bind(2, t);
  return s.step() ? s.integer(0) : 0;
}

bool Queue::heartbeat(int64_t attempt_id, double t, const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    if (live_run(db_, path_, attempt_id) < 0) return false;
    Statement(db_, "UPDATE attempts SET lease_until = ? WHERE id = ?", path_)
        .bind(1, t + policy.lease_seconds)
        .bind(2, attempt_id)
        .step();
    return true;
  });
}

namespace {
// Attempt `attempt_id` of run `run` has started training.
void set_running(sqlite3* db, const std::string& path, int64_t attempt_id, int64_t run, double t) {
  Transition x;
  x.run = run;
  x.run_state = RunState::kRunning;
  x.attempt = attempt_id;
  x.attempt_state = AttemptState::kRunning;
  apply(db, path, x, t);
}
}  // namespace

bool Queue::mark_running(int64_t attempt_id, double t) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    set_running(db_, path_, attempt_id, run, t);
    return true;
  });
}

bool Queue::finish(int64_t attempt_id, const nlohmann::json& result, double t) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    apply_end(db_, path_, attempt_id, run, attempt_succeeded(result), t);
    return true;
  });
}

bool Queue::fail(int64_t attempt_id, const std::string& reason, bool retryable, double t,
                 const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    apply_end(db_, path_, attempt_id, run,
              attempt_failed(AttemptState::kFailed, reason, retryable, run_so_far(db_, path_, run),
                             policy),
              t);
    return true;
  });
}

bool Queue::end_reported(int64_t attempt_id, int exit_code, const std::string& stderr_tail,
                         double t, const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    apply_end(db_, path_, attempt_id, run,
              decide_attempt_end(last_outcome(attempt_id), exit_code, stderr_tail,
                                 run_so_far(db_, path_, run), policy),
              t);
    return true;
  });
}

int Queue::expire_leases(double t, const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    std::vector<std::pair<int64_t, int64_t>> lost;
    {
      Statement s(db_, "SELECT id, run_id FROM attempts WHERE state IN (?, ?) AND lease_until < ?",
                  path_);
      s.bind(1, AttemptState::kLeased).bind(2, AttemptState::kRunning).bind(3, t);
      while (s.step()) lost.push_back({s.integer(0), s.integer(1)});
    }
    for (const auto& [attempt, run] : lost)
      apply_end(db_, path_, attempt, run,
                attempt_failed(AttemptState::kLost, "lease expired", /*retryable=*/true,
                               run_so_far(db_, path_, run), policy),
                t);
    return int(lost.size());
  });
}

namespace {
// The state of run `run`, or nullopt when there is no such run.
std::optional<RunState> state_of(sqlite3* db, const std::string& path, int64_t run) {
  Statement s(db, "SELECT state FROM runs WHERE id = ?", path);
  s.bind(1, run);
  return s.step() ? parse_run_state(s.text(0)) : std::nullopt;
}
}  // namespace

bool Queue::cancel(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    const std::optional<RunState> state = state_of(db_, path_, run_id);
    if (!state || !is_unfinished(*state)) return false;
    Transition x;
    x.run = run_id;
    x.run_state = RunState::kCanceled;
    {  // its live attempt, if it has one, ends with it
      Statement live(db_, "SELECT MAX(id) FROM attempts WHERE run_id = ? AND state IN (?, ?)",
                     path_);
      live.bind(1, run_id).bind(2, AttemptState::kLeased).bind(3, AttemptState::kRunning).step();
      if (!live.is_null(0)) {
        x.attempt = live.integer(0);
        x.attempt_state = AttemptState::kCanceled;
      }
    }
    apply(db_, path_, x, t);
    return true;
  });
}

bool Queue::retry(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    const std::optional<RunState> state = state_of(db_, path_, run_id);
    if (!state || !is_retryable(*state)) return false;
    Transition x;
    x.run = run_id;
    x.run_state = RunState::kQueued;
    x.not_before = 0.0;
    apply(db_, path_, x, t);
    // A fresh attempt budget and preemption count.
    Statement(db_,
              "UPDATE runs SET max_attempts = attempts + (SELECT max_attempts FROM sweeps s JOIN "
              "sweep_runs sr ON sr.sweep_id = s.id WHERE sr.run_id = runs.id ORDER BY s.id LIMIT "
              "1), preemptions = 0 WHERE id = ?",
              path_)
        .bind(1, run_id)
        .step();
    return true;
  });
}

bool Queue::record_event(int64_t attempt_id, int64_t seq, const nlohmann::json& event) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    Statement ins(db_,
                  "INSERT OR IGNORE INTO events (attempt_id, seq, type, body) VALUES (?, ?, ?, ?)",
                  path_);
    ins.bind(1, attempt_id)
        .bind(2, seq)
        .bind(3, event.value("type", std::string("?")))
        .bind(4, event.dump())
        .step();
    if (sqlite3_changes(db_) == 0) return true;  // a duplicate: stored before
    const std::string type = event.value("type", "");
    if (type == kStartedEvent)
      set_running(db_, path_, attempt_id, run, event.value("time", unix_time()));
    if ((type == kProgressEvent || type == kEvalEvent) && event.contains("step")) {
      Statement m(
          db_, "INSERT OR REPLACE INTO metrics (attempt_id, step, name, value) VALUES (?, ?, ?, ?)",
          path_);
      nlohmann::json values = nlohmann::json::object();
      for (const char* name : kEventMetrics) {
        if (!event.contains(name) || !event[name].is_number()) continue;
        m.bind(1, attempt_id)
            .bind(2, event["step"].get<int64_t>())
            .bind(3, std::string(name))
            .bind(4, event[name].get<double>());
        m.step();
        m.reset();
        values[name] = event[name];
      }
      add_change(
          db_, path_, "metric",
          {{"run", run}, {"attempt", attempt_id}, {"step", event["step"]}, {"values", values}},
          event.value("time", 0.0));
    }
    return true;
  });
}

nlohmann::json Queue::last_outcome(int64_t attempt_id) {
  Statement s(db_,
              "SELECT body FROM events WHERE attempt_id = ? AND type IN (?, ?, ?) ORDER BY seq "
              "DESC LIMIT 1",
              path_);
  // The trainer's outcome events, bound as the states are.
  s.bind(1, attempt_id)
      .bind(2, std::string(kFinishedEvent))
      .bind(3, std::string(kFailedEvent))
      .bind(4, std::string(kPreemptedEvent));
  return s.step() ? nlohmann::json::parse(s.text(0)) : nlohmann::json();
}

int Queue::release_unlisted(const std::string& worker, const std::vector<int64_t>& listed,
                            double leased_before, double t) {
  return in_transaction(db_, path_, [&] {
    std::vector<std::pair<int64_t, int64_t>> unlisted;  // (attempt, run)
    {
      Statement s(db_,
                  "SELECT id, run_id FROM attempts WHERE worker_id = ? AND state IN (?, ?) AND "
                  "started < ?",
                  path_);
      s.bind(1, worker)
          .bind(2, AttemptState::kLeased)
          .bind(3, AttemptState::kRunning)
          .bind(4, leased_before);
      while (s.step())
        if (std::find(listed.begin(), listed.end(), s.integer(0)) == listed.end())
          unlisted.push_back({s.integer(0), s.integer(1)});
    }
    for (const auto& [attempt, run] : unlisted)
      apply_end(db_, path_, attempt, run,
                attempt_given_back(AttemptState::kReleased, "not held by its worker"), t);
    return int(unlisted.size());
  });
}

std::string Queue::attempt_holder(int64_t attempt_id) {
  Statement s(db_, "SELECT worker_id FROM attempts WHERE id = ?", path_);
  s.bind(1, attempt_id);
  return s.step() ? s.text(0) : std::string();
}

std::optional<std::pair<int64_t, std::string>> Queue::live_attempt(int64_t attempt_id) {
  const int64_t run = live_run(db_, path_, attempt_id);
  if (run < 0) return std::nullopt;
  Statement s(db_, "SELECT key FROM runs WHERE id = ?", path_);
  s.bind(1, run).step();
  return std::make_pair(run, s.text(0));
}
}  // namespace tallrec
