// The checkpoints the coordinator holds for each run: which are recorded (step, path, digest),
// and which are forgotten when a newer one arrives. The files themselves live under the
// artifacts folder (coordinator/checkpoint_transfers.h moves them); this is only their index,
// over the store's one connection (coordinator/database.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace tallrec {

class Database;

// A checkpoint stored under the coordinator's artifacts folder (`path` is relative to it).
struct StoredCheckpoint {
  int64_t step;
  std::string path;    // runs/<run key>/step-NNNNNNNN
  std::string sha256;  // of its manifest.json
  int64_t bytes;
};

class CheckpointRecords {
 public:
  explicit CheckpointRecords(Database& database);

  // Records a verified checkpoint of a live attempt's run and forgets the run's other checkpoints
  // except `best_step`'s. Returns the paths no longer recorded, for the caller to delete, or
  // nullopt (nothing recorded) when the attempt is stale.
  std::optional<std::vector<std::string>> record(int64_t attempt_id,
                                                 const StoredCheckpoint& checkpoint,
                                                 int64_t best_step, double now);
  // The run's recorded checkpoints, oldest first.
  std::vector<StoredCheckpoint> of_run(int64_t run_id);

 private:
  sqlite3* db_;
  const std::string& path_;
};

}  // namespace tallrec
