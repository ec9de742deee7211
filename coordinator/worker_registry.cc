#include "coordinator/worker_registry.h"

#include <sqlite3.h>

#include "coordinator/database.h"
#include "coordinator/store_sql.h"

namespace tallrec {

WorkerRegistry::WorkerRegistry(Database& database)
    : db_(database.handle()), path_(database.path()) {}

void WorkerRegistry::announce(const std::string& id, const std::string& host,
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

void WorkerRegistry::ensure_known(const std::string& id, double t) {
  Statement(db_, "INSERT OR IGNORE INTO workers (id, last_seen) VALUES (?, ?)", path_)
      .bind(1, id)
      .bind(2, t)
      .step();
}

std::string WorkerRegistry::curve_key(const std::string& id) {
  Statement s(db_, "SELECT curve_key FROM workers WHERE id = ?", path_);
  s.bind(1, id);
  return s.step() ? s.text(0) : std::string();
}

void WorkerRegistry::bind_curve_key(const std::string& id, const std::string& key) {
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

std::vector<WorkerRow> WorkerRegistry::list() {
  std::vector<WorkerRow> out;
  Statement s(db_,
              "SELECT id, host, version, slots, gpus, last_seen, alive, slurm FROM workers ORDER "
              "BY id",
              path_);
  Statement held(db_, "SELECT id FROM attempts WHERE worker_id = ? AND state IN (?, ?) ORDER BY id",
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
    held.bind(1, w.id).bind(2, AttemptState::kLeased).bind(3, AttemptState::kRunning);
    while (held.step()) w.attempts.push_back(held.integer(0));
    held.reset();
    out.push_back(std::move(w));
  }
  return out;
}

void WorkerRegistry::seen(const std::string& id, double t) {
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

int WorkerRegistry::mark_silent(double silent_since, double t) {
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

void WorkerRegistry::record_slurm_job(const SlurmJobRow& job) {
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

std::vector<SlurmJobRow> WorkerRegistry::slurm_jobs() {
  std::vector<SlurmJobRow> out;
  Statement s(db_,
              "SELECT job_id, tasks, source, submitted, script FROM slurm_jobs ORDER BY submitted "
              "DESC",
              path_);
  while (s.step()) out.push_back({s.text(0), s.integer(1), s.text(2), s.real(3), s.text(4)});
  return out;
}
}  // namespace tallrec
