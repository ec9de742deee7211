// The change feed: every state change of the store appends an entry in its own transaction
// (coordinator/store_sql.h, add_change), and readers replay it by id. The HTTP API streams it as
// Server-Sent Events; a client that reconnects with Last-Event-ID misses nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace tallrec {

class Database;

// One entry: kind "run" (a state change), "sweep" (submitted), "metric" (new points of an
// attempt), "checkpoint" (stored), "worker" (joined or lost), "slurm" (a worker job submitted).
struct Change {
  int64_t id;
  double time;
  std::string kind;
  nlohmann::json body;
};

class ChangeFeed {
 public:
  explicit ChangeFeed(Database& database);
  // The entries after id `after`, oldest first, at most `limit` of them.
  std::vector<Change> since(int64_t after, int64_t limit = 1000);
  int64_t last_id();  // 0 when the feed is empty

 private:
  sqlite3* db_;
  const std::string& path_;
};

}  // namespace tallrec
