// The coordinator's store and queue: one SQLite file in WAL mode. Every state change is one
// transaction; readers (CLI, dashboard) never block the writer. The schema is versioned by
// migrations (table schema_version); opening an older file upgrades it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "coordinator/grid.h"

struct sqlite3;

namespace tallrec {

enum class RunState { kQueued, kLeased, kRunning, kSucceeded, kFailed, kCanceled };
const char* run_state_name(RunState s);

struct SubmitResult {
  int64_t sweep_id;
  bool new_sweep;
  size_t added, existing;  // runs new to the store / already there (same key)
};

struct SweepStatus {
  int64_t id;
  std::string name;
  std::map<std::string, int64_t> runs_by_state;  // every state present, 0 when none
  int64_t total() const;
};

struct RunRow {
  int64_t id;
  std::string key, state, domain;
  int64_t sample;
  uint64_t seed;
  int64_t attempts;
};

class Store {
 public:
  // Opens (creating if needed) and migrates the database. Throws Error naming the file.
  explicit Store(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version();
  // Adds the grid's sweep (by name) and its runs in one transaction; runs already stored
  // (same key, from this or another sweep) are linked, not duplicated.
  SubmitResult submit(const Grid& grid);
  std::vector<SweepStatus> status();
  std::vector<RunRow> runs(const std::string& sweep_name = "", const std::string& state = "", int64_t limit = -1,
                           int64_t offset = 0);
  std::string integrity_check();

 private:
  void exec(const char* sql);
  void migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace tallrec
