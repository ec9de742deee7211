#include "coordinator/database.h"

#include <sqlite3.h>

#include "common/error.h"
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

Database::Database(const std::filesystem::path& path) : path_(path.string()) {
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

Database::~Database() {
  StatementCache::forget(db_);
  sqlite3_close(db_);
}

void Database::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error(path_ + ": sqlite: " + why);
  }
}

void Database::disable_auto_checkpoint() { exec("PRAGMA wal_autocheckpoint = 0"); }

void Database::checkpoint_wal() {
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) !=
          SQLITE_OK &&
      sqlite3_errcode(db_) != SQLITE_BUSY)
    throw Error(path_ + ": sqlite checkpoint: " + sqlite3_errmsg(db_));
}

int Database::schema_version() {
  Statement s(db_, "SELECT version FROM schema_version", path_);
  return s.step() ? int(s.integer(0)) : 0;
}

void Database::migrate() {
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

std::string Database::integrity_check() {
  Statement s(db_, "PRAGMA integrity_check", path_);
  return s.step() ? s.text(0) : "";
}

Database::Batch::Batch(Database& database) : database_(database), open_(true) {
  Statement(database_.db_, "BEGIN IMMEDIATE", database_.path_).step();
}

Database::Batch::~Batch() {
  if (open_) sqlite3_exec(database_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Database::Batch::commit() {
  Statement(database_.db_, "COMMIT", database_.path_).step();
  open_ = false;
}

Database::Savepoint::Savepoint(Database& database) : database_(database), open_(true) {
  Statement(database_.db_, "SAVEPOINT message", database_.path_)
      .step();  // prepared once: one per message
}

Database::Savepoint::~Savepoint() {
  if (open_)
    sqlite3_exec(database_.db_, "ROLLBACK TO message; RELEASE message", nullptr, nullptr, nullptr);
}

void Database::Savepoint::release() {
  Statement(database_.db_, "RELEASE message", database_.path_).step();
  open_ = false;
}
}  // namespace tallrec
