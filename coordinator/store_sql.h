// Internal to the store (coordinator/store*.cc): a prepared statement and the one
// transaction helper every state change goes through. Errors name the database file.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coordinator/run_state.h"

namespace tallrec {

// Prepared statements kept per connection, keyed by their SQL text's address (every statement
// of the store is a string literal): preparing is most of the cost of a small query.
class StatementCache {
 public:
  // The cached statement for (db, sql) if it is not in use, or nullptr (then the caller prepares
  // its own, e.g. for a nested use of the same SQL).
  static sqlite3_stmt* take(sqlite3* db, const char* sql) {
    std::lock_guard<std::mutex> lock(mutex());
    auto it = entries().find({db, sql});
    if (it == entries().end() || it->second.busy) return nullptr;
    it->second.busy = true;
    return it->second.stmt;
  }
  static void give_back(sqlite3* db, const char* sql, sqlite3_stmt* s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    std::lock_guard<std::mutex> lock(mutex());
    auto [it, added] = entries().try_emplace({db, sql}, Entry{s, false});
    if (added) return;  // the first of its kind: kept
    if (it->second.stmt == s)
      it->second.busy = false;
    else
      sqlite3_finalize(s);  // a nested extra copy
  }
  // Finalizes the connection's statements; call before sqlite3_close.
  static void forget(sqlite3* db) {
    std::lock_guard<std::mutex> lock(mutex());
    for (auto it = entries().begin(); it != entries().end();) {
      if (it->first.first != db) {
        ++it;
        continue;
      }
      sqlite3_finalize(it->second.stmt);
      it = entries().erase(it);
    }
  }

 private:
  struct Entry {
    sqlite3_stmt* stmt;
    bool busy;
  };
  struct KeyHash {
    size_t operator()(const std::pair<sqlite3*, const char*>& k) const {
      return std::hash<const void*>()(k.first) * 31 + std::hash<const void*>()(k.second);
    }
  };
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<std::pair<sqlite3*, const char*>, Entry, KeyHash>& entries() {
    static std::unordered_map<std::pair<sqlite3*, const char*>, Entry, KeyHash> m;
    return m;
  }
};

// A prepared statement (from the cache when one is idle), returned to the cache on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path)
      : db_(db), sql_(sql), path_(path) {
    stmt_ = StatementCache::take(db, sql);
    if (!stmt_ &&
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      fail("prepare");
  }
  ~Statement() { StatementCache::give_back(db_, sql_, stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Statement& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, double v) {
    check(sqlite3_bind_double(stmt_, i, v));
    return *this;
  }
  // States are bound, never written into the SQL: their names are spelled once (run_state.h).
  Statement& bind(int i, RunState s) { return bind(i, std::string(run_state_name(s))); }
  Statement& bind(int i, AttemptState s) { return bind(i, std::string(attempt_state_name(s))); }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
  double real(int col) { return sqlite3_column_double(stmt_, col); }
  bool is_null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string text(int col) {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
  }
  [[noreturn]] void fail(const char* what) {
    throw Error(path_ + ": sqlite " + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  const char* sql_;
  sqlite3_stmt* stmt_ = nullptr;
  const std::string& path_;
};

// One state change, all or nothing: BEGIN IMMEDIATE ... COMMIT around `body`, ROLLBACK if it
// throws. Inside a batch (Database::Batch) it is a SAVEPOINT instead: still all or nothing, and
// durable when the batch commits.
template <typename F>
auto in_transaction(sqlite3* db, const std::string& path, F&& body) {
  const bool nested = !sqlite3_get_autocommit(db);
  // Prepared once per connection (the statement cache): parsing these on every change cost more
  // than the change itself under load.
  Statement(db, nested ? "SAVEPOINT change" : "BEGIN IMMEDIATE", path).step();
  try {
    auto result = body();
    Statement(db, nested ? "RELEASE change" : "COMMIT", path).step();
    return result;
  } catch (...) {
    if (nested) {
      sqlite3_exec(db, "ROLLBACK TO change", nullptr, nullptr, nullptr);
      sqlite3_exec(db, "RELEASE change", nullptr, nullptr, nullptr);
    } else {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    throw;
  }
}

// Appends to the change feed (table `changes`), inside the caller's transaction: what the HTTP
// API streams as Server-Sent Events, replayable by id.
inline void add_change(sqlite3* db, const std::string& path, const char* kind,
                       const nlohmann::json& body, double t) {
  Statement(db, "INSERT INTO changes (time, kind, body) VALUES (?, ?, ?)", path)
      .bind(1, t)
      .bind(2, std::string(kind))
      .bind(3, body.dump())
      .step();
}

// The live attempt's run id, or -1 if the attempt is stale (fencing).
inline int64_t live_run(sqlite3* db, const std::string& path, int64_t attempt_id) {
  Statement s(db,
              "SELECT a.run_id FROM attempts a JOIN runs r ON r.id = a.run_id WHERE a.id = ? "
              "AND a.state IN (?, ?) AND r.state IN (?, ?) "
              "AND a.id = (SELECT MAX(id) FROM attempts WHERE run_id = a.run_id)",
              path);
  s.bind(1, attempt_id)
      .bind(2, AttemptState::kLeased)
      .bind(3, AttemptState::kRunning)
      .bind(4, RunState::kLeased)
      .bind(5, RunState::kRunning);
  return s.step() ? s.integer(0) : -1;
}

}  // namespace tallrec
