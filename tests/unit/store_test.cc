#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/error.h"
#include "coordinator/grid.h"
#include "coordinator/store.h"
#include "grid_text.h"
#include "test_paths.h"

namespace tallrec {
namespace {
using test::grid_text;

TEST(Store, SubmittingTwiceOrOverlappingAddsOnlyWhatIsNew) {
  test::ScratchDir dir;
  Store store(dir / "s.db");
  EXPECT_EQ(store.database.schema_version(), 5);
  auto a = store.queue.submit(parse_grid(grid_text("a", "[16, 64]"), "a"));
  EXPECT_TRUE(a.new_sweep);
  EXPECT_EQ(a.added, 8u);
  auto again = store.queue.submit(parse_grid(grid_text("a", "[16, 64]"), "a"));
  EXPECT_FALSE(again.new_sweep);
  EXPECT_EQ(again.sweep_id, a.sweep_id);
  EXPECT_EQ(again.added, 0u);
  EXPECT_EQ(again.existing, 8u);
  auto b = store.queue.submit(
      parse_grid(grid_text("b", "[64, 256]"), "b"));  // shares the sample-64 runs
  EXPECT_EQ(b.added, 4u);
  EXPECT_EQ(b.existing, 4u);
  auto status = store.views.status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].total(), 8);
  EXPECT_EQ(status[1].total(), 8);
  EXPECT_EQ(status[1].runs_by_state.at(RunState::kQueued), 8);
  EXPECT_EQ(store.views.runs().size(), 12u);
  EXPECT_EQ(store.views.runs("b", RunState::kQueued, 3, 0).size(), 3u);
  EXPECT_EQ(store.database.integrity_check(), "ok");
}

TEST(Store, ReopeningKeepsDataAndSchema) {
  test::ScratchDir dir;
  { Store(dir / "s.db").queue.submit(parse_grid(grid_text("a", "[16]"), "a")); }
  Store again(dir / "s.db");
  EXPECT_EQ(again.database.schema_version(), 5);
  EXPECT_EQ(again.views.runs().size(), 4u);
}

TEST(Store, AVersionOneFileIsMigratedAndKeepsItsRuns) {
  test::ScratchDir dir;
  {
    Store(dir / "s.db").queue.submit(parse_grid(grid_text("a", "[16]"), "a"));
    sqlite3* db = nullptr;  // turn it back into a version-1 file, as an older tallrec left it
    ASSERT_EQ(sqlite3_open((dir / "s.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP INDEX attempts_by_run; DROP INDEX attempts_by_worker; DROP INDEX "
                           "checkpoints_by_run; DROP TABLE changes; "
                           "ALTER TABLE workers DROP COLUMN alive; ALTER TABLE workers DROP COLUMN "
                           "curve_key; ALTER TABLE runs DROP COLUMN preemptions; ALTER TABLE "
                           "workers DROP COLUMN slurm; DROP TABLE slurm_jobs; ALTER TABLE runs "
                           "DROP COLUMN micro_batch_size; ALTER TABLE runs DROP COLUMN "
                           "eval_batch_size; ALTER TABLE attempts DROP COLUMN micro_batch_size; "
                           "ALTER TABLE attempts DROP COLUMN eval_batch_size; "
                           "UPDATE schema_version SET version = 1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Store upgraded(dir / "s.db");
  EXPECT_EQ(upgraded.database.schema_version(), 5);
  EXPECT_EQ(upgraded.views.runs().size(), 4u);
  EXPECT_EQ(upgraded.changes.last_id(), 0);
  upgraded.queue.cancel(1, 1.0);
  ASSERT_EQ(upgraded.changes.since(0).size(), 1u);
  EXPECT_EQ(upgraded.changes.since(0)[0].body, (nlohmann::json{{"run", 1}, {"state", "canceled"}}));
}

TEST(Store, ReadersNeverBreakAWriter) {
  test::ScratchDir dir;
  { Store init(dir / "s.db"); }
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      Store reader(dir / "s.db");  // a separate connection, as the CLI or the dashboard
      while (!done) {
        try {
          reader.views.status();
          reader.views.runs("", std::nullopt, 100, 0);
          ++reads;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  Store writer(dir / "s.db");
  while (reads < 4) std::this_thread::yield();  // every reader is connected and reading
  for (int i = 0; i < 40; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "w%d",
                  i);  // GCC 12 warns falsely (-Wrestrict) on "w" + to_string(i)
    writer.queue.submit(parse_grid(grid_text(name, "[16, 64]"), "w"));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(reads, 0);
  EXPECT_EQ(writer.views.status().size(), 40u);
  EXPECT_EQ(writer.database.integrity_check(), "ok");
}

TEST(Store, ANewerSchemaIsRefused) {
  test::ScratchDir dir;
  { Store init(dir / "s.db"); }
  sqlite3* db = nullptr;
  sqlite3_open((dir / "s.db").c_str(), &db);
  sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THROW(Store(dir / "s.db"), Error);
}

}  // namespace
}  // namespace tallrec

namespace tallrec {
namespace {

// Issue 19: states are spelled once (coordinator/run_state.h) and bound as parameters; no SQL of
// the store writes one as a literal. The first migration's CHECK is history (migrations are
// appended, never edited), so database.cc is left out, and its list must equal the enum's.
TEST(Store, NoStoreSourceSpellsAStateInItsSql) {
  std::set<std::string> states;
  for (RunState s : kAllRunStates) states.insert(run_state_name(s));
  for (AttemptState s : kAllAttemptStates) states.insert(attempt_state_name(s));
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(test::source_dir() / "coordinator")) {
    const auto name = entry.path().filename().string();
    if (entry.path().extension() != ".cc" && entry.path().extension() != ".h") continue;
    if (name == "run_state.cc" || name == "database.cc") continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    for (const auto& state : states)
      EXPECT_EQ(text.find("'" + state + "'"), std::string::npos)
          << name << " writes the state '" << state << "' into SQL: bind it (store_sql.h)";
  }
  EXPECT_GT(files, 10);
}

TEST(Store, TheSchemasRunStatesAreTheEnums) {
  test::ScratchDir dir;
  Store store(dir / "s.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "s.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'runs'", -1, &s, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  const std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  std::string listed;
  for (RunState st : kAllRunStates)
    listed += std::string(listed.empty() ? "" : ",") + "'" + run_state_name(st) + "'";
  EXPECT_NE(sql.find("state IN (" + listed + ")"), std::string::npos) << sql;
}

}  // namespace
}  // namespace tallrec
