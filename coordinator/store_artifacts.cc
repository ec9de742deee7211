// The store's records of checkpoints and workers (declared in coordinator/store.h).
#include <sqlite3.h>

#include <algorithm>

#include "coordinator/store.h"
#include "coordinator/store_sql.h"

namespace tallrec {

Store::Batch::Batch(Store& store) : store_(store), open_(true) {
  Statement(store_.db_, "BEGIN IMMEDIATE", store_.path_).step();
}

Store::Batch::~Batch() {
  if (open_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Store::Batch::commit() {
  Statement(store_.db_, "COMMIT", store_.path_).step();
  open_ = false;
}

Store::Savepoint::Savepoint(Store& store) : store_(store), open_(true) {
  Statement(store_.db_, "SAVEPOINT message", store_.path_)
      .step();  // prepared once: one per message
}

Store::Savepoint::~Savepoint() {
  if (open_)
    sqlite3_exec(store_.db_, "ROLLBACK TO message; RELEASE message", nullptr, nullptr, nullptr);
}

void Store::Savepoint::release() {
  Statement(store_.db_, "RELEASE message", store_.path_).step();
  open_ = false;
}

int Store::release_unlisted(const std::string& worker, const std::vector<int64_t>& listed,
                            double leased_before, double t) {
  return in_transaction(db_, path_, [&] {
    std::vector<std::pair<int64_t, int64_t>> unlisted;  // (attempt, run)
    {
      Statement s(db_,
                  "SELECT id, run_id FROM attempts WHERE worker_id = ? AND state IN ('leased', "
                  "'running') AND started < ?",
                  path_);
      s.bind(1, worker).bind(2, leased_before);
      while (s.step())
        if (std::find(listed.begin(), listed.end(), s.integer(0)) == listed.end())
          unlisted.push_back({s.integer(0), s.integer(1)});
    }
    for (const auto& [attempt, run] : unlisted) {
      Statement(db_,
                "UPDATE attempts SET state = 'released', ended = ?, reason = 'not held by its "
                "worker' WHERE id = ?",
                path_)
          .bind(1, t)
          .bind(2, attempt)
          .step();
      Statement(
          db_,
          "UPDATE runs SET state = 'queued', attempts = attempts - 1, not_before = 0, updated = ? "
          "WHERE id = ? AND state IN ('leased', 'running')",
          path_)
          .bind(1, t)
          .bind(2, run)
          .step();
      add_change(db_, path_, "run",
                 {{"run", run},
                  {"state", run_state_name(RunState::kQueued)},
                  {"attempt", attempt},
                  {"attempt_state", "released"}},
                 t);
    }
    return int(unlisted.size());
  });
}

std::string Store::worker_curve_key(const std::string& id) {
  Statement s(db_, "SELECT curve_key FROM workers WHERE id = ?", path_);
  s.bind(1, id);
  return s.step() ? s.text(0) : std::string();
}

void Store::bind_worker_curve_key(const std::string& id, const std::string& key) {
  // A worker row may not exist yet (its first message); the key waits in a row of its own.
  Statement(db_,
            "INSERT INTO workers (id, curve_key) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET "
            "curve_key = excluded.curve_key "
            "WHERE workers.curve_key IS NULL",
            path_)
      .bind(1, id)
      .bind(2, key)
      .step();
}

std::string Store::attempt_holder(int64_t attempt_id) {
  Statement s(db_, "SELECT worker_id FROM attempts WHERE id = ?", path_);
  s.bind(1, attempt_id);
  return s.step() ? s.text(0) : std::string();
}

std::optional<std::pair<int64_t, std::string>> Store::live_attempt(int64_t attempt_id) {
  const int64_t run = live_run(db_, path_, attempt_id);
  if (run < 0) return std::nullopt;
  Statement s(db_, "SELECT key FROM runs WHERE id = ?", path_);
  s.bind(1, run).step();
  return std::make_pair(run, s.text(0));
}

std::optional<std::vector<std::string>> Store::record_checkpoint(int64_t attempt_id,
                                                                 const StoredCheckpoint& c,
                                                                 int64_t best_step, double t) {
  return in_transaction(db_, path_, [&]() -> std::optional<std::vector<std::string>> {
    const int64_t run = live_run(db_, path_, attempt_id);
    if (run < 0) return std::nullopt;
    Statement(db_, "DELETE FROM checkpoints WHERE run_id = ? AND step = ?", path_)
        .bind(1, run)
        .bind(2, c.step)
        .step();
    Statement(db_,
              "INSERT INTO checkpoints (run_id, attempt_id, step, path, sha256, bytes, created) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)",
              path_)
        .bind(1, run)
        .bind(2, attempt_id)
        .bind(3, c.step)
        .bind(4, c.path)
        .bind(5, c.sha256)
        .bind(6, c.bytes)
        .bind(7, t)
        .step();
    add_change(db_, path_, "checkpoint",
               {{"run", run}, {"attempt", attempt_id}, {"step", c.step}, {"bytes", c.bytes}}, t);
    std::vector<std::string> forgotten;
    Statement old(
        db_,
        "SELECT path FROM checkpoints WHERE run_id = ?1 AND step NOT IN (?2, ?3) AND path != ?4",
        path_);
    old.bind(1, run).bind(2, c.step).bind(3, best_step).bind(4, c.path);
    while (old.step()) forgotten.push_back(old.text(0));
    Statement(db_, "DELETE FROM checkpoints WHERE run_id = ?1 AND step NOT IN (?2, ?3)", path_)
        .bind(1, run)
        .bind(2, c.step)
        .bind(3, best_step)
        .step();
    return forgotten;
  });
}

std::vector<StoredCheckpoint> Store::checkpoints(int64_t run_id) {
  Statement s(db_,
              "SELECT step, path, sha256, bytes FROM checkpoints WHERE run_id = ? ORDER BY step",
              path_);
  s.bind(1, run_id);
  std::vector<StoredCheckpoint> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.integer(3)});
  return out;
}

std::vector<WorkerRow> Store::workers() {
  std::vector<WorkerRow> out;
  Statement s(db_,
              "SELECT id, host, version, slots, gpus, last_seen, alive, slurm FROM workers ORDER "
              "BY id",
              path_);
  Statement held(
      db_,
      "SELECT id FROM attempts WHERE worker_id = ? AND state IN ('leased', 'running') ORDER BY id",
      path_);
  while (s.step()) {
    WorkerRow w{
        s.text(0),
        s.text(1),
        s.text(2),
        s.integer(3),
        nlohmann::json::parse(s.text(4).empty() ? "[]" : s.text(4)),
        s.real(5),
        {},
        s.integer(6) != 0,
        s.text(7).empty() ? nlohmann::json() : nlohmann::json::parse(s.text(7), nullptr, false)};
    held.bind(1, w.id);
    while (held.step()) w.attempts.push_back(held.integer(0));
    held.reset();
    out.push_back(std::move(w));
  }
  return out;
}

void Store::worker_seen(const std::string& id, double t) {
  in_transaction(db_, path_, [&] {
    Statement was(db_, "SELECT alive FROM workers WHERE id = ?", path_);
    was.bind(1, id);
    if (!was.step()) return 0;
    const bool back = was.integer(0) == 0;
    Statement(db_, "UPDATE workers SET last_seen = ?, alive = 1 WHERE id = ?", path_)
        .bind(1, t)
        .bind(2, id)
        .step();
    if (back) add_change(db_, path_, "worker", {{"worker", id}, {"alive", true}}, t);
    return 0;
  });
}

int Store::mark_silent_workers(double silent_since, double t) {
  return in_transaction(db_, path_, [&] {
    std::vector<std::string> silent;
    {
      Statement s(db_, "SELECT id FROM workers WHERE alive = 1 AND last_seen < ?", path_);
      s.bind(1, silent_since);
      while (s.step()) silent.push_back(s.text(0));
    }
    for (const auto& id : silent) {
      Statement(db_, "UPDATE workers SET alive = 0 WHERE id = ?", path_).bind(1, id).step();
      add_change(db_, path_, "worker", {{"worker", id}, {"alive", false}}, t);
    }
    return int(silent.size());
  });
}

std::vector<Change> Store::changes_since(int64_t after, int64_t limit) {
  Statement s(db_, "SELECT id, time, kind, body FROM changes WHERE id > ? ORDER BY id LIMIT ?",
              path_);
  s.bind(1, after).bind(2, limit);
  std::vector<Change> out;
  while (s.step())
    out.push_back({s.integer(0), s.real(1), s.text(2), nlohmann::json::parse(s.text(3))});
  return out;
}

int64_t Store::last_change_id() {
  Statement s(db_, "SELECT COALESCE(MAX(id), 0) FROM changes", path_);
  s.step();
  return s.integer(0);
}

}  // namespace tallrec

namespace tallrec {

void Store::record_slurm_job(const SlurmJobRow& job) {
  in_transaction(db_, path_, [&] {
    Statement(db_,
              "INSERT OR REPLACE INTO slurm_jobs (job_id, tasks, source, submitted, script) "
              "VALUES (?, ?, ?, ?, ?)",
              path_)
        .bind(1, job.job_id)
        .bind(2, job.tasks)
        .bind(3, job.source)
        .bind(4, job.submitted)
        .bind(5, job.script)
        .step();
    add_change(db_, path_, "slurm",
               {{"job", job.job_id}, {"tasks", job.tasks}, {"source", job.source}}, job.submitted);
    return 0;
  });
}

std::vector<SlurmJobRow> Store::slurm_jobs() {
  std::vector<SlurmJobRow> out;
  Statement s(db_,
              "SELECT job_id, tasks, source, submitted, script FROM slurm_jobs ORDER BY submitted "
              "DESC",
              path_);
  while (s.step()) out.push_back({s.text(0), s.integer(1), s.text(2), s.real(3), s.text(4)});
  return out;
}

}  // namespace tallrec
