// The store's read views: what the CLI, the HTTP API and the dashboard show (sweeps and their
// progress, runs, attempts, metrics, events, results). Each is one query (or a few) over the
// store's one connection (coordinator/database.h) and never writes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/checkpoint_records.h"
#include "coordinator/run_state.h"
#include "coordinator/worker_registry.h"

struct sqlite3;

namespace tallrec {

class Database;

struct SweepStatus {
  int64_t id;
  std::string name;
  std::map<RunState, int64_t> runs_by_state;  // every state, 0 when none
  // Seconds until the sweep's unfinished runs are done, from the measured wall time of its
  // succeeded attempts (lease to finish), per method (an LLM run and a baseline's differ by
  // orders of magnitude), and how many run at once now: the sum over methods of mean duration x
  // (queued + leased + half the running) / max(1, leased + running). Negative while a method with
  // runs left has finished none.
  double eta_seconds = -1;
  int64_t total() const;
};

struct RunRow {
  int64_t id;
  std::string key;
  RunState state;
  std::string domain;
  int64_t sample;
  uint64_t seed;
  int64_t attempts;
  nlohmann::json spec;           // as the grid expanded it
  nlohmann::json result;         // the finished event, or null
  std::string reason;            // why the newest attempt ended (a failure's reason), or ""
  int64_t micro_batch_size = 0;  // set once an out-of-memory halved it (0: the spec's)
  int64_t preemptions = 0;
};

// A run of a sweep as the results heatmap needs it.
struct RunOutcome {
  std::string domain;
  int64_t sample;
  uint64_t seed;
  RunState state;
  nlohmann::json result;  // the finished event, or null
  nlohmann::json spec;    // as the grid expanded it
};

struct MetricPoint {
  int64_t attempt, step;
  double value;
};

// How the CLI's --json and the HTTP API show a run row, a worker, runs counted by state (by
// state name) and a sweep's counts.
nlohmann::json run_row_json(const RunRow& r);
nlohmann::json worker_row_json(const WorkerRow& w);
nlohmann::json runs_by_state_json(const std::map<RunState, int64_t>& counts);
nlohmann::json sweep_status_json(const SweepStatus& s);

class StoreViews {
 public:
  explicit StoreViews(Database& database);

  // Every sweep with its runs counted by state.
  std::vector<SweepStatus> status();
  // Runs, optionally of one sweep (by name, "" for any) and in one state, by id.
  std::vector<RunRow> runs(const std::string& sweep_name = "",
                           std::optional<RunState> state = std::nullopt, int64_t limit = -1,
                           int64_t offset = 0);
  int64_t count_runs(const std::string& sweep_name = "",
                     std::optional<RunState> state = std::nullopt);
  std::map<RunState, int64_t> runs_by_state();        // every run in the store
  std::optional<RunState> run_state(int64_t run_id);  // nullopt when there is no such run
  int64_t event_count(int64_t attempt_id);
  std::optional<nlohmann::json> sweep_document(const std::string& name);  // id, name, grid, ...
  std::vector<RunOutcome> run_outcomes(const std::string& sweep_name);
  std::optional<nlohmann::json> run_detail(int64_t run_id);  // spec, result, attempts, checkpoints
  std::vector<MetricPoint> metric_series(int64_t run_id, const std::string& name);
  nlohmann::json run_events(int64_t run_id, int64_t after_id, int64_t limit);
  // Results of a sweep's succeeded runs: (spec, result) pairs.
  std::vector<std::pair<nlohmann::json, nlohmann::json>> results(const std::string& sweep_name);

 private:
  sqlite3* db_;
  const std::string& path_;
  CheckpointRecords checkpoints_;  // a run's detail lists its checkpoints
};

}  // namespace tallrec
