// The store's one SQLite connection (WAL mode): opening and migrating the file, group commit, and
// the WAL housekeeping. The store's parts (coordinator/store.h) all write through it; every state
// change is one transaction, and readers (CLI, dashboard) never block the writer. The schema is
// versioned by migrations (table schema_version); opening an older file upgrades it.
#pragma once

#include <filesystem>
#include <string>

struct sqlite3;

namespace tallrec {

class Database {
 public:
  // Opens (creating if needed) and migrates the database. Throws Error naming the file.
  explicit Database(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Group commit: the changes made while a Batch is open share one COMMIT (each is still all or
  // nothing, as a savepoint). The broker opens one per burst of messages and sends its replies
  // only after commit(), so nothing is acknowledged before it is durable.
  class Batch {
   public:
    explicit Batch(Database& database);
    ~Batch();  // rolls back unless committed
    void commit();

   private:
    Database& database_;
    bool open_;
  };

  // One message's changes inside a Batch: kept by release(), undone if destroyed before it.
  class Savepoint {
   public:
    explicit Savepoint(Database& database);
    ~Savepoint();
    void release();

   private:
    Database& database_;
    bool open_;
  };

  int schema_version();
  std::string integrity_check();  // "ok", or what SQLite found
  // WAL checkpoints: by default SQLite runs them inside whichever commit crosses 1000 pages,
  // which stalls that writer. The coordinator turns that off for the broker's connection and
  // checkpoints from another thread (PASSIVE: never waits for, nor blocks, the writer).
  void disable_auto_checkpoint();
  void checkpoint_wal();

  // For the store's parts (coordinator/store_sql.h): the connection and the file's name, which
  // every error message carries.
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  void exec(const char* sql);
  void migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace tallrec
