// Internal to the store (coordinator/store*.cc): a prepared statement and the one
// transaction helper every state change goes through. Errors name the database file.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "common/error.h"

namespace tallrec {

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& bind(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); return *this; }
  Statement& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, double v) { check(sqlite3_bind_double(stmt_, i, v)); return *this; }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
  }
  void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }
  int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
  double real(int col) { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  void check(int rc) { if (rc != SQLITE_OK) fail("bind"); }
  [[noreturn]] void fail(const char* what) { throw Error(path_ + ": sqlite " + what + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT around `body`; ROLLBACK if it throws.
template <typename F>
auto in_transaction(sqlite3* db, const std::string& path, F&& body) {
  char* err = nullptr;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "";
    sqlite3_free(err);
    throw Error(path + ": sqlite: " + why);
  }
  try {
    auto result = body();
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) throw Error(path + ": sqlite: commit failed");
    return result;
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}


// The live attempt's run id, or -1 if the attempt is stale (fencing).
inline int64_t live_run(sqlite3* db, const std::string& path, int64_t attempt_id) {
  Statement s(db,
              "SELECT a.run_id FROM attempts a JOIN runs r ON r.id = a.run_id WHERE a.id = ? "
              "AND a.state IN ('leased', 'running') AND r.state IN ('leased', 'running') "
              "AND a.id = (SELECT MAX(id) FROM attempts WHERE run_id = a.run_id)",
              path);
  s.bind(1, attempt_id);
  return s.step() ? s.integer(0) : -1;
}

}  // namespace tallrec
