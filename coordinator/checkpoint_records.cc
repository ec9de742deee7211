#include "coordinator/checkpoint_records.h"

#include <sqlite3.h>

#include "coordinator/database.h"
#include "coordinator/store_sql.h"

namespace tallrec {

CheckpointRecords::CheckpointRecords(Database& database)
    : db_(database.handle()), path_(database.path()) {}

std::optional<std::vector<std::string>> CheckpointRecords::record(int64_t attempt_id,
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

std::vector<StoredCheckpoint> CheckpointRecords::of_run(int64_t run_id) {
  Statement s(db_,
              "SELECT step, path, sha256, bytes FROM checkpoints WHERE run_id = ? ORDER BY step",
              path_);
  s.bind(1, run_id);
  std::vector<StoredCheckpoint> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.integer(3)});
  return out;
}
}  // namespace tallrec
