#include "coordinator/change_feed.h"

#include <sqlite3.h>

#include "coordinator/database.h"
#include "coordinator/store_sql.h"

namespace tallrec {

ChangeFeed::ChangeFeed(Database& database) : db_(database.handle()), path_(database.path()) {}

std::vector<Change> ChangeFeed::since(int64_t after, int64_t limit) {
  Statement s(db_, "SELECT id, time, kind, body FROM changes WHERE id > ? ORDER BY id LIMIT ?",
              path_);
  s.bind(1, after).bind(2, limit);
  std::vector<Change> out;
  while (s.step())
    out.push_back({s.integer(0), s.real(1), s.text(2), nlohmann::json::parse(s.text(3))});
  return out;
}

int64_t ChangeFeed::last_id() {
  Statement s(db_, "SELECT COALESCE(MAX(id), 0) FROM changes", path_);
  s.step();
  return s.integer(0);
}
}  // namespace tallrec
