#include "coordinator/queue.h"

#include <sqlite3.h>

#include <algorithm>

#include "common/clock.h"
#include "common/error.h"
#include "common/exit_codes.h"
#include "common/run_spec.h"
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

double backoff(int64_t attempts, const RetryPolicy& p) {
  double b = p.backoff_base;
  for (int64_t k = 1; k < attempts && b < p.backoff_max; ++k) b *= 2;
  return std::min(b, p.backoff_max);
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
    Statement(db_, "UPDATE runs SET state = ?, attempts = attempts + 1, updated = ? WHERE id = ?",
              path_)
        .bind(1, RunState::kLeased)
        .bind(2, t)
        .bind(3, l.run_id)
        .step();
    add_change(db_, path_, "run",
               {{"run", l.run_id},
                {"state", run_state_name(RunState::kLeased)},
                {"attempt", l.attempt_id},
                {"worker", worker}},
               t);
    return l;
  });
}

int64_t Queue::count_ready_runs(double t) {
  Statement s(db_, "SELECT COUNT(*) FROM runs WHERE state = ? AND not_before <= ?", path_);
  s.bind(1, std::string(run_state_name(RunState::kQueued))).bind(2, t);
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
  Statement(db, "UPDATE attempts SET state = ? WHERE id = ?", path)
      .bind(1, AttemptState::kRunning)
      .bind(2, attempt_id)
      .step();
  Statement(db, "UPDATE runs SET state = ?, updated = ? WHERE id = ?", path)
      .bind(1, RunState::kRunning)
      .bind(2, t)
      .bind(3, run)
      .step();
  add_change(db, path, "run",
             {{"run", run}, {"state", run_state_name(RunState::kRunning)}, {"attempt", attempt_id}},
             t);
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
    Statement(db_, "UPDATE attempts SET state = ?, ended = ?, exit_code = 0 WHERE id = ?", path_)
        .bind(1, AttemptState::kSucceeded)
        .bind(2, t)
        .bind(3, attempt_id)
        .step();
    Statement(db_, "UPDATE runs SET state = ?, result = ?, updated = ? WHERE id = ?", path_)
        .bind(1, RunState::kSucceeded)
        .bind(2, result.dump())
        .bind(3, t)
        .bind(4, run)
        .step();
    add_change(
        db_, path_, "run",
        {{"run", run}, {"state", run_state_name(RunState::kSucceeded)}, {"attempt", attempt_id}},
        t);
    return true;
  });
}

namespace {
// Ends attempt `attempt_id` of run `run` as `attempt_state` and re-queues or fails the run.
void end_attempt(sqlite3* db, const std::string& path, int64_t attempt_id, int64_t run,
                 AttemptState attempt_state, const std::string& reason, bool retryable, double t,
                 const RetryPolicy& policy) {
  Statement(db, "UPDATE attempts SET state = ?, ended = ?, reason = ? WHERE id = ?", path)
      .bind(1, attempt_state)
      .bind(2, t)
      .bind(3, reason)
      .bind(4, attempt_id)
      .step();
  Statement q(db, "SELECT attempts, max_attempts FROM runs WHERE id = ?", path);
  q.bind(1, run).step();
  const int64_t attempts = q.integer(0), max_attempts = q.integer(1);
  const bool again = retryable && attempts < max_attempts;
  if (again) {
    Statement(db, "UPDATE runs SET state = ?, not_before = ?, updated = ? WHERE id = ?", path)
        .bind(1, RunState::kQueued)
        .bind(2, t + backoff(attempts, policy))
        .bind(3, t)
        .bind(4, run)
        .step();
  } else {
    Statement(db, "UPDATE runs SET state = ?, updated = ? WHERE id = ?", path)
        .bind(1, RunState::kFailed)
        .bind(2, t)
        .bind(3, run)
        .step();
  }
  add_change(db, path, "run",
             {{"run", run},
              {"state", run_state_name(again ? RunState::kQueued : RunState::kFailed)},
              {"attempt", attempt_id},
              {"attempt_state", attempt_state_name(attempt_state)},
              {"reason", reason}},
             t);
}
}  // namespace

bool Queue::fail(int64_t attempt_id, const std::string& reason, bool retryable, double t,
                 const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    end_attempt(db_, path_, attempt_id, run, AttemptState::kFailed, reason, retryable, t, policy);
    return true;
  });
}

namespace {
// Ends attempt `attempt_id` of run `run` as `state` and queues the run again at once: no backoff,
// and the attempt is given back (preemption, an out-of-memory retried smaller: not failures of
// the run).
void requeue_at_once(sqlite3* db, const std::string& path, int64_t attempt_id, int64_t run,
                     AttemptState state, const std::string& reason, double t) {
  Statement(db, "UPDATE attempts SET state = ?, ended = ?, reason = ? WHERE id = ?", path)
      .bind(1, state)
      .bind(2, t)
      .bind(3, reason)
      .bind(4, attempt_id)
      .step();
  Statement(db,
            "UPDATE runs SET state = ?, not_before = 0, attempts = attempts - 1, updated = ? "
            "WHERE id = ?",
            path)
      .bind(1, RunState::kQueued)
      .bind(2, t)
      .bind(3, run)
      .step();
  add_change(db, path, "run",
             {{"run", run},
              {"state", run_state_name(RunState::kQueued)},
              {"attempt", attempt_id},
              {"attempt_state", attempt_state_name(state)},
              {"reason", reason}},
             t);
}
}  // namespace

bool Queue::preempt(int64_t attempt_id, const std::string& reason, double t,
                    const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    Statement q(db_, "SELECT preemptions FROM runs WHERE id = ?", path_);
    q.bind(1, run).step();
    const int64_t preemptions = q.integer(0) + 1;
    Statement(db_, "UPDATE runs SET preemptions = ? WHERE id = ?", path_)
        .bind(1, preemptions)
        .bind(2, run)
        .step();
    if (preemptions > policy.max_preemptions) {
      // A run that is stopped every time it runs would cycle forever: it fails, saying why.
      end_attempt(db_, path_, attempt_id, run, AttemptState::kPreempted,
                  reason + "; preempted " + std::to_string(preemptions) +
                      " times, more than --max-preemptions " +
                      std::to_string(policy.max_preemptions) + ": the run never got to finish",
                  /*retryable=*/false, t, policy);
      return true;
    }
    requeue_at_once(db_, path_, attempt_id, run, AttemptState::kPreempted, reason, t);
    return true;
  });
}

namespace {
// The micro-batch after an out-of-memory at `micro`: the largest that divides `batch` and is at
// most half of it (so the global batch stays `batch`), 0 when `micro` is 1 already.
int64_t halved_micro_batch(int64_t micro, int64_t batch) {
  for (int64_t m = micro / 2; m >= 1; --m)
    if (batch % m == 0) return m;
  return 0;
}
}  // namespace

bool Queue::out_of_memory(int64_t attempt_id, const nlohmann::json& outcome, double t) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    Statement q(db_, "SELECT spec, micro_batch_size, eval_batch_size FROM runs WHERE id = ?",
                path_);
    q.bind(1, run).step();
    const nlohmann::json spec = nlohmann::json::parse(q.text(0));
    const RunSpec defaults;
    const int64_t batch = spec.value("batch_size", defaults.batch_size);
    const int64_t micro =
        q.is_null(1) ? spec.value("micro_batch_size", defaults.micro_batch_size) : q.integer(1);
    const int64_t eval =
        q.is_null(2) ? spec.value("eval_batch_size", defaults.eval_batch_size) : q.integer(2);
    const std::string phase = outcome["out_of_memory"].value("phase", std::string("train"));
    const int64_t next_micro = halved_micro_batch(micro, batch);
    const std::string reason = outcome.value("reason", std::string("out of memory"));
    // Loading does not depend on the batch; at micro-batch 1 nothing is left to halve.
    if (phase == "load" || next_micro == 0) {
      end_attempt(db_, path_, attempt_id, run, AttemptState::kFailed,
                  reason + (next_micro == 0 ? "; micro-batch 1 does not fit either"
                                            : "; a smaller batch would not help"),
                  /*retryable=*/false, t, RetryPolicy{});
      return true;
    }
    const int64_t next_eval = std::max<int64_t>(1, eval / 2);
    const std::string retry = reason + "; retrying with micro-batch " + std::to_string(next_micro) +
                              " x " + std::to_string(batch / next_micro) +
                              " accumulation (global batch " + std::to_string(batch) +
                              "), evaluation batch " + std::to_string(next_eval);
    // The halvings are bounded by log2(micro-batch): no attempt is spent on them.
    requeue_at_once(db_, path_, attempt_id, run, AttemptState::kFailed, retry, t);
    Statement(db_, "UPDATE runs SET micro_batch_size = ?, eval_batch_size = ? WHERE id = ?", path_)
        .bind(1, next_micro)
        .bind(2, next_eval)
        .bind(3, run)
        .step();
    return true;
  });
}

bool Queue::end_reported(int64_t attempt_id, int exit_code, const std::string& stderr_tail,
                         double t, const RetryPolicy& policy) {
  const nlohmann::json outcome = last_outcome(attempt_id);
  const std::string type = outcome.is_object() ? outcome.value("type", "") : "";
  if (exit_code == 0 && type == "finished") return finish(attempt_id, outcome, t);
  if (type == "failed" && outcome.contains("out_of_memory") && outcome["out_of_memory"].is_object())
    return out_of_memory(attempt_id, outcome, t);
  if (type == "preempted")
    return preempt(attempt_id,
                   "preempted at step " + std::to_string(outcome.value("step", int64_t(0))) + " (" +
                       outcome.value("reason", std::string("signal")) + ")",
                   t, policy);
  // No outcome event at all (the trainer died before its first line): retryable.
  const bool retryable =
      exit_code != kBadInputExitCode && (outcome.is_null() || outcome.value("retryable", true));
  const std::string reason = outcome.is_null()
                                 ? "exit " + std::to_string(exit_code) + ": " + stderr_tail
                                 : outcome.value("reason", std::string("failed"));
  return fail(attempt_id, reason, retryable, t, policy);
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
      end_attempt(db_, path_, attempt, run, AttemptState::kLost, "lease expired", true, t, policy);
    return int(lost.size());
  });
}

bool Queue::cancel(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    Statement(db_, "UPDATE attempts SET state = ?, ended = ? WHERE run_id = ? AND state IN (?, ?)",
              path_)
        .bind(1, AttemptState::kCanceled)
        .bind(2, t)
        .bind(3, run_id)
        .bind(4, AttemptState::kLeased)
        .bind(5, AttemptState::kRunning)
        .step();
    Statement u(db_, "UPDATE runs SET state = ?, updated = ? WHERE id = ? AND state IN (?, ?, ?)",
                path_);
    u.bind(1, RunState::kCanceled)
        .bind(2, t)
        .bind(3, run_id)
        .bind(4, RunState::kQueued)
        .bind(5, RunState::kLeased)
        .bind(6, RunState::kRunning)
        .step();
    if (sqlite3_changes(db_) == 0) return false;
    add_change(db_, path_, "run", {{"run", run_id}, {"state", run_state_name(RunState::kCanceled)}},
               t);
    return true;
  });
}

bool Queue::retry(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    Statement u(db_,
                "UPDATE runs SET state = ?, max_attempts = attempts + (SELECT max_attempts "
                "FROM sweeps s JOIN sweep_runs sr ON sr.sweep_id = s.id WHERE sr.run_id = runs.id "
                "ORDER BY s.id LIMIT 1), not_before = 0, preemptions = 0, updated = ? WHERE id = ? "
                "AND state IN (?, ?)",
                path_);
    u.bind(1, RunState::kQueued)
        .bind(2, t)
        .bind(3, run_id)
        .bind(4, RunState::kFailed)
        .bind(5, RunState::kCanceled)
        .step();
    if (sqlite3_changes(db_) == 0) return false;
    add_change(db_, path_, "run", {{"run", run_id}, {"state", run_state_name(RunState::kQueued)}},
               t);
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
    if (type == "started")
      set_running(db_, path_, attempt_id, run, event.value("time", unix_time()));
    if ((type == "progress" || type == "eval") && event.contains("step")) {
      Statement m(
          db_, "INSERT OR REPLACE INTO metrics (attempt_id, step, name, value) VALUES (?, ?, ?, ?)",
          path_);
      nlohmann::json values = nlohmann::json::object();
      for (const char* name :
           {"loss", "lr", "grad_norm", "tokens_per_s", "memory_bytes", "val_auc", "val_loss"}) {
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
  // The trainer's outcome events (schemas/train_event.schema.json), bound as the states are.
  s.bind(1, attempt_id)
      .bind(2, std::string("finished"))
      .bind(3, std::string("failed"))
      .bind(4, std::string("preempted"));
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
      requeue_at_once(db_, path_, attempt, run, AttemptState::kReleased, "not held by its worker",
                      t);
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
