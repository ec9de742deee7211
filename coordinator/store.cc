#include "coordinator/store.h"

#include <sqlite3.h>

#include <chrono>

#include "common/clock.h"
#include "common/error.h"
#include "common/run_spec.h"
#include "coordinator/store_sql.h"

namespace tallrec {
namespace {

// Migration k brings the schema from version k to k + 1. Append, never edit.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE sweeps (
      id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, grid TEXT NOT NULL,
      priority INTEGER NOT NULL, max_attempts INTEGER NOT NULL, created REAL NOT NULL);
    CREATE TABLE runs (
      id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('queued','leased','running','succeeded','failed','canceled')),
      domain TEXT NOT NULL, sample INTEGER NOT NULL, seed INTEGER NOT NULL,
      priority INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
      not_before REAL NOT NULL DEFAULT 0, result TEXT, created REAL NOT NULL, updated REAL NOT NULL);
    CREATE INDEX runs_by_state ON runs (state, priority DESC, id);
    CREATE TABLE sweep_runs (
      sweep_id INTEGER NOT NULL REFERENCES sweeps(id), run_id INTEGER NOT NULL REFERENCES runs(id),
      PRIMARY KEY (sweep_id, run_id)) WITHOUT ROWID;
    CREATE TABLE workers (
      id TEXT PRIMARY KEY, host TEXT, gpus TEXT, slots INTEGER, version TEXT, last_seen REAL);
    CREATE TABLE attempts (
      id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), worker_id TEXT REFERENCES workers(id),
      state TEXT NOT NULL, lease_until REAL, started REAL, ended REAL, exit_code INTEGER, reason TEXT);
    CREATE TABLE metrics (
      attempt_id INTEGER NOT NULL REFERENCES attempts(id), step INTEGER NOT NULL, name TEXT NOT NULL,
      value REAL NOT NULL, PRIMARY KEY (attempt_id, step, name)) WITHOUT ROWID;
    CREATE TABLE checkpoints (
      id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), attempt_id INTEGER REFERENCES attempts(id),
      step INTEGER NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, created REAL NOT NULL);
    CREATE TABLE events (
      id INTEGER PRIMARY KEY, attempt_id INTEGER NOT NULL REFERENCES attempts(id), seq INTEGER NOT NULL,
      type TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (attempt_id, seq));
    )sql",
    // v2: the change feed (the HTTP API's Server-Sent Events replay it by id) and worker liveness.
    R"sql(
    CREATE TABLE changes (
      id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL);
    ALTER TABLE workers ADD COLUMN alive INTEGER NOT NULL DEFAULT 1;
    )sql",
    // v3: indexes for lookups made per message or per heartbeat (a run's live attempt, a worker's
    // leases, a run's checkpoints), which otherwise read every attempt ever made.
    R"sql(
    CREATE INDEX attempts_by_run ON attempts (run_id, id);
    CREATE INDEX attempts_by_worker ON attempts (worker_id);
    CREATE INDEX checkpoints_by_run ON checkpoints (run_id, step);
    )sql",
    // v4: the CURVE public key a worker id first connected with (NULL without CURVE): a worker id,
    // and so its attempts, belong to that key.
    R"sql(
    ALTER TABLE workers ADD COLUMN curve_key TEXT;
    )sql",
    // v5: preemption (an attempt stopped by its worker's signal, checkpointed: the run is queued
    // at once and keeps its attempt budget; a bound of its own stops a run that never finishes),
    // the batch sizes an out-of-memory halved (NULL: the spec's), and where a worker runs when
    // Slurm started it.
    R"sql(
    ALTER TABLE runs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE workers ADD COLUMN slurm TEXT;
    ALTER TABLE runs ADD COLUMN micro_batch_size INTEGER;
    ALTER TABLE runs ADD COLUMN eval_batch_size INTEGER;
    ALTER TABLE attempts ADD COLUMN micro_batch_size INTEGER;
    ALTER TABLE attempts ADD COLUMN eval_batch_size INTEGER;
    CREATE TABLE slurm_jobs (
      job_id TEXT PRIMARY KEY, tasks INTEGER NOT NULL, source TEXT NOT NULL,
      submitted REAL NOT NULL, script TEXT NOT NULL);
    )sql",
};

}  // namespace

int64_t SweepStatus::total() const {
  int64_t t = 0;
  for (const auto& [state, n] : runs_by_state) t += n;
  return t;
}

Store::Store(const std::filesystem::path& path) : path_(path.string()) {
  if (sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(path_ + ": cannot open database: " + why);
  }
  // Writers wait for each other instead of failing with "database is locked".
  sqlite3_busy_timeout(db_, 30000);
  try {
    exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
    migrate();
  } catch (...) {
    StatementCache::forget(db_);
    sqlite3_close(db_);
    throw;
  }
}

Store::~Store() {
  StatementCache::forget(db_);
  sqlite3_close(db_);
}

void Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error(path_ + ": sqlite: " + why);
  }
}

void Store::disable_auto_checkpoint() { exec("PRAGMA wal_autocheckpoint = 0"); }

void Store::checkpoint_wal() {
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) !=
          SQLITE_OK &&
      sqlite3_errcode(db_) != SQLITE_BUSY)
    throw Error(path_ + ": sqlite checkpoint: " + sqlite3_errmsg(db_));
}

int Store::schema_version() {
  Statement s(db_, "SELECT version FROM schema_version", path_);
  return s.step() ? int(s.integer(0)) : 0;
}

void Store::migrate() {
  in_transaction(db_, path_, [&] {
    exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int version = schema_version();
    if (version == 0) exec("INSERT INTO schema_version VALUES (0)");
    const int latest = int(std::size(kMigrations));
    if (version > latest)
      throw Error(path_ + ": schema version " + std::to_string(version) +
                  " is newer than this tallrec");
    for (; version < latest; ++version) {
      exec(kMigrations[version]);
      Statement(db_, "UPDATE schema_version SET version = ?", path_)
          .bind(1, int64_t(version + 1))
          .step();
    }
    return 0;
  });
}

SubmitResult Store::submit(const Grid& grid) {
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
                     "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                     path_);
    Statement id_of(db_, "SELECT id FROM runs WHERE key = ?", path_);
    Statement link(db_, "INSERT OR IGNORE INTO sweep_runs (sweep_id, run_id) VALUES (?, ?)", path_);
    for (const auto& run : grid.runs) {
      insert.bind(1, run.key)
          .bind(2, run.spec.dump())
          .bind(3, run.domain)
          .bind(4, run.sample)
          .bind(5, int64_t(run.seed))
          .bind(6, grid.priority)
          .bind(7, grid.max_attempts)
          .bind(8, t)
          .bind(9, t);
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

std::vector<SweepStatus> Store::status() {
  std::vector<SweepStatus> out;
  Statement s(db_,
              "SELECT s.id, s.name, r.state, COUNT(r.id) FROM sweeps s LEFT JOIN sweep_runs sr ON "
              "sr.sweep_id = s.id "
              "LEFT JOIN runs r ON r.id = sr.run_id GROUP BY s.id, r.state ORDER BY s.id",
              path_);
  while (s.step()) {
    if (out.empty() || out.back().id != s.integer(0)) {
      out.push_back({s.integer(0), s.text(1), {}});
      for (RunState st : kAllRunStates) out.back().runs_by_state[run_state_name(st)] = 0;
    }
    if (!s.text(2).empty()) out.back().runs_by_state[s.text(2)] = s.integer(3);
  }
  Statement mean(
      db_,
      "SELECT AVG(a.ended - a.started) FROM attempts a JOIN sweep_runs sr ON sr.run_id = a.run_id "
      "WHERE sr.sweep_id = ? AND a.state = 'succeeded' AND a.ended IS NOT NULL AND a.started IS "
      "NOT NULL",
      path_);
  for (auto& sweep : out) {
    mean.bind(1, sweep.id);
    if (mean.step() && !mean.text(0).empty()) {
      const double each = mean.real(0);
      auto& n = sweep.runs_by_state;
      auto count = [&](RunState s) { return double(n[run_state_name(s)]); };
      const double remaining =
          count(RunState::kQueued) + count(RunState::kLeased) + 0.5 * count(RunState::kRunning);
      sweep.eta_seconds =
          each * remaining / std::max(1.0, count(RunState::kLeased) + count(RunState::kRunning));
    }
    mean.reset();
  }
  return out;
}

std::vector<RunRow> Store::runs(const std::string& sweep_name, const std::string& state,
                                int64_t limit, int64_t offset) {
  Statement s(db_,
              "SELECT DISTINCT r.id, r.key, r.state, r.domain, r.sample, r.seed, r.attempts, "
              "r.spec, r.result, "
              "(SELECT reason FROM attempts a WHERE a.run_id = r.id ORDER BY a.id DESC LIMIT 1), "
              "r.micro_batch_size, r.preemptions FROM runs r "
              "JOIN sweep_runs sr ON sr.run_id = r.id JOIN sweeps s ON s.id = sr.sweep_id "
              "WHERE (?1 = '' OR s.name = ?1) AND (?2 = '' OR r.state = ?2) ORDER BY r.id LIMIT ?3 "
              "OFFSET ?4",
              path_);
  s.bind(1, sweep_name).bind(2, state).bind(3, limit).bind(4, offset);
  std::vector<RunRow> out;
  while (s.step())
    out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3), s.integer(4),
                   uint64_t(s.integer(5)), s.integer(6), nlohmann::json::parse(s.text(7)),
                   s.text(8).empty() ? nlohmann::json() : nlohmann::json::parse(s.text(8)),
                   s.text(9), s.is_null(10) ? 0 : s.integer(10), s.integer(11)});
  return out;
}

std::string Store::integrity_check() {
  Statement s(db_, "PRAGMA integrity_check", path_);
  return s.step() ? s.text(0) : "";
}

namespace {

double backoff(int64_t attempts, const RetryPolicy& p) {
  double b = p.backoff_base;
  for (int64_t k = 1; k < attempts && b < p.backoff_max; ++k) b *= 2;
  return std::min(b, p.backoff_max);
}

}  // namespace

std::optional<Lease> Store::lease_next(const std::string& worker, double t,
                                       const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&]() -> std::optional<Lease> {
    Statement pick(
        db_,
        "SELECT id, key, spec, attempts, micro_batch_size, eval_batch_size FROM runs WHERE state = "
        "'queued' AND not_before <= ? ORDER BY priority DESC, id LIMIT 1",
        path_);
    pick.bind(1, t);
    if (!pick.step()) return std::nullopt;
    Lease l{0,
            pick.integer(0),
            pick.text(1),
            pick.text(2),
            pick.integer(3) + 1,
            t + policy.lease_seconds,
            pick.is_null(4) ? std::nullopt : std::optional<int64_t>(pick.integer(4)),
            pick.is_null(5) ? std::nullopt : std::optional<int64_t>(pick.integer(5))};
    Statement(db_, "INSERT OR IGNORE INTO workers (id, last_seen) VALUES (?, ?)", path_)
        .bind(1, worker)
        .bind(2, t)
        .step();
    Statement add(db_,
                  "INSERT INTO attempts (run_id, worker_id, state, lease_until, started, "
                  "micro_batch_size, eval_batch_size) VALUES (?, ?, 'leased', ?, ?, ?, ?)",
                  path_);
    add.bind(1, l.run_id).bind(2, worker).bind(3, l.lease_until).bind(4, t);
    if (l.micro_batch_size) add.bind(5, *l.micro_batch_size);
    if (l.eval_batch_size) add.bind(6, *l.eval_batch_size);
    add.step();
    l.attempt_id = sqlite3_last_insert_rowid(db_);
    Statement(db_,
              "UPDATE runs SET state = 'leased', attempts = attempts + 1, updated = ? WHERE id = ?",
              path_)
        .bind(1, t)
        .bind(2, l.run_id)
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

int64_t Store::count_ready_runs(double t) {
  Statement s(db_, "SELECT COUNT(*) FROM runs WHERE state = ? AND not_before <= ?", path_);
  s.bind(1, std::string(run_state_name(RunState::kQueued))).bind(2, t);
  return s.step() ? s.integer(0) : 0;
}

bool Store::heartbeat(int64_t attempt_id, double t, const RetryPolicy& policy) {
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
  Statement(db, "UPDATE attempts SET state = 'running' WHERE id = ?", path)
      .bind(1, attempt_id)
      .step();
  Statement(db, "UPDATE runs SET state = 'running', updated = ? WHERE id = ?", path)
      .bind(1, t)
      .bind(2, run)
      .step();
  add_change(db, path, "run",
             {{"run", run}, {"state", run_state_name(RunState::kRunning)}, {"attempt", attempt_id}},
             t);
}
}  // namespace

bool Store::mark_running(int64_t attempt_id, double t) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    set_running(db_, path_, attempt_id, run, t);
    return true;
  });
}

bool Store::finish(int64_t attempt_id, const nlohmann::json& result, double t) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    Statement(db_, "UPDATE attempts SET state = 'succeeded', ended = ?, exit_code = 0 WHERE id = ?",
              path_)
        .bind(1, t)
        .bind(2, attempt_id)
        .step();
    Statement(db_, "UPDATE runs SET state = 'succeeded', result = ?, updated = ? WHERE id = ?",
              path_)
        .bind(1, result.dump())
        .bind(2, t)
        .bind(3, run)
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
                 const char* attempt_state, const std::string& reason, bool retryable, double t,
                 const RetryPolicy& policy) {
  Statement(db, "UPDATE attempts SET state = ?, ended = ?, reason = ? WHERE id = ?", path)
      .bind(1, std::string(attempt_state))
      .bind(2, t)
      .bind(3, reason)
      .bind(4, attempt_id)
      .step();
  Statement q(db, "SELECT attempts, max_attempts FROM runs WHERE id = ?", path);
  q.bind(1, run).step();
  const int64_t attempts = q.integer(0), max_attempts = q.integer(1);
  const bool again = retryable && attempts < max_attempts;
  if (again) {
    Statement(db, "UPDATE runs SET state = 'queued', not_before = ?, updated = ? WHERE id = ?",
              path)
        .bind(1, t + backoff(attempts, policy))
        .bind(2, t)
        .bind(3, run)
        .step();
  } else {
    Statement(db, "UPDATE runs SET state = 'failed', updated = ? WHERE id = ?", path)
        .bind(1, t)
        .bind(2, run)
        .step();
  }
  add_change(db, path, "run",
             {{"run", run},
              {"state", run_state_name(again ? RunState::kQueued : RunState::kFailed)},
              {"attempt", attempt_id},
              {"attempt_state", attempt_state},
              {"reason", reason}},
             t);
}
}  // namespace

bool Store::fail(int64_t attempt_id, const std::string& reason, bool retryable, double t,
                 const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return false;
    end_attempt(db_, path_, attempt_id, run, attempt_state_name(AttemptState::kFailed), reason,
                retryable, t, policy);
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
      .bind(1, std::string(attempt_state_name(state)))
      .bind(2, t)
      .bind(3, reason)
      .bind(4, attempt_id)
      .step();
  Statement(db,
            "UPDATE runs SET state = ?, not_before = 0, attempts = attempts - 1, updated = ? "
            "WHERE id = ?",
            path)
      .bind(1, std::string(run_state_name(RunState::kQueued)))
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

bool Store::preempt(int64_t attempt_id, const std::string& reason, double t,
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
      end_attempt(db_, path_, attempt_id, run, attempt_state_name(AttemptState::kPreempted),
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

bool Store::out_of_memory(int64_t attempt_id, const nlohmann::json& outcome, double t) {
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
      end_attempt(db_, path_, attempt_id, run, attempt_state_name(AttemptState::kFailed),
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

bool Store::end_reported(int64_t attempt_id, int exit_code, const std::string& stderr_tail,
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
  const bool retryable = exit_code != 2 && (outcome.is_null() || outcome.value("retryable", true));
  const std::string reason = outcome.is_null()
                                 ? "exit " + std::to_string(exit_code) + ": " + stderr_tail
                                 : outcome.value("reason", std::string("failed"));
  return fail(attempt_id, reason, retryable, t, policy);
}

int Store::expire_leases(double t, const RetryPolicy& policy) {
  return in_transaction(db_, path_, [&] {
    std::vector<std::pair<int64_t, int64_t>> lost;
    {
      Statement s(db_,
                  "SELECT id, run_id FROM attempts WHERE state IN ('leased', 'running') AND "
                  "lease_until < ?",
                  path_);
      s.bind(1, t);
      while (s.step()) lost.push_back({s.integer(0), s.integer(1)});
    }
    for (const auto& [attempt, run] : lost)
      end_attempt(db_, path_, attempt, run, attempt_state_name(AttemptState::kLost),
                  "lease expired", true, t, policy);
    return int(lost.size());
  });
}

bool Store::cancel(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    Statement(db_,
              "UPDATE attempts SET state = 'canceled', ended = ? WHERE run_id = ? AND state IN "
              "('leased', 'running')",
              path_)
        .bind(1, t)
        .bind(2, run_id)
        .step();
    Statement u(db_,
                "UPDATE runs SET state = 'canceled', updated = ? WHERE id = ? AND state IN "
                "('queued', 'leased', 'running')",
                path_);
    u.bind(1, t).bind(2, run_id).step();
    if (sqlite3_changes(db_) == 0) return false;
    add_change(db_, path_, "run", {{"run", run_id}, {"state", run_state_name(RunState::kCanceled)}},
               t);
    return true;
  });
}

bool Store::retry(int64_t run_id, double t) {
  return in_transaction(db_, path_, [&] {
    Statement u(db_,
                "UPDATE runs SET state = 'queued', max_attempts = attempts + (SELECT max_attempts "
                "FROM sweeps s JOIN "
                "sweep_runs sr ON sr.sweep_id = s.id WHERE sr.run_id = runs.id ORDER BY s.id LIMIT "
                "1), not_before = 0, preemptions = 0, "
                "updated = ? WHERE id = ? AND state IN ('failed', 'canceled')",
                path_);
    u.bind(1, t).bind(2, run_id).step();
    if (sqlite3_changes(db_) == 0) return false;
    add_change(db_, path_, "run", {{"run", run_id}, {"state", run_state_name(RunState::kQueued)}},
               t);
    return true;
  });
}

void Store::register_worker(const std::string& id, const std::string& host,
                            const nlohmann::json& gpus, int64_t slots, const std::string& version,
                            double t, const nlohmann::json& slurm) {
  in_transaction(db_, path_, [&] {
    Statement(db_,
              "INSERT INTO workers (id, host, gpus, slots, version, last_seen, slurm) VALUES (?, "
              "?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET host = excluded.host, gpus = "
              "excluded.gpus, slots = excluded.slots, version = excluded.version, last_seen = "
              "excluded.last_seen, slurm = excluded.slurm",
              path_)
        .bind(1, id)
        .bind(2, host)
        .bind(3, gpus.dump())
        .bind(4, slots)
        .bind(5, version)
        .bind(6, t)
        .bind(7, slurm.is_object() ? slurm.dump() : std::string())
        .step();
    Statement(db_, "UPDATE workers SET alive = 1 WHERE id = ?", path_).bind(1, id).step();
    add_change(db_, path_, "worker",
               {{"worker", id}, {"alive", true}, {"host", host}, {"slots", slots}}, t);
    return 0;
  });
}

bool Store::record_event(int64_t attempt_id, int64_t seq, const nlohmann::json& event) {
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

nlohmann::json Store::last_outcome(int64_t attempt_id) {
  Statement s(db_,
              "SELECT body FROM events WHERE attempt_id = ? AND type IN ('finished', 'failed', "
              "'preempted') "
              "ORDER BY seq DESC LIMIT 1",
              path_);
  s.bind(1, attempt_id);
  return s.step() ? nlohmann::json::parse(s.text(0)) : nlohmann::json();
}

int64_t Store::event_count(int64_t attempt_id) {
  Statement s(db_, "SELECT COUNT(*) FROM events WHERE attempt_id = ?", path_);
  s.bind(1, attempt_id).step();
  return s.integer(0);
}

std::string Store::run_state(int64_t run_id) {
  Statement s(db_, "SELECT state FROM runs WHERE id = ?", path_);
  s.bind(1, run_id);
  return s.step() ? s.text(0) : "";
}

std::vector<std::pair<nlohmann::json, nlohmann::json>> Store::results(
    const std::string& sweep_name) {
  Statement s(db_,
              "SELECT r.spec, r.result FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id JOIN "
              "sweeps s ON s.id = sr.sweep_id "
              "WHERE s.name = ? AND r.state = 'succeeded' ORDER BY r.id",
              path_);
  s.bind(1, sweep_name);
  std::vector<std::pair<nlohmann::json, nlohmann::json>> out;
  while (s.step())
    out.push_back({nlohmann::json::parse(s.text(0)), nlohmann::json::parse(s.text(1))});
  return out;
}

}  // namespace tallrec
