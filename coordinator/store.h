// The coordinator's store: one SQLite file, split by concern over its one connection. Each part's
// header states its contract:
//   database     coordinator/database.h            the connection, migrations, group commit
//   queue        coordinator/queue.h               runs, attempts and their state transitions
//   workers      coordinator/worker_registry.h     workers, their CURVE keys, Slurm worker jobs
//   checkpoints  coordinator/checkpoint_records.h  the index of each run's stored checkpoints
//   changes      coordinator/change_feed.h         the change feed the HTTP API streams
//   views        coordinator/store_views.h         what the CLI, the API and the dashboard read
// A part writes only its own tables (and the change feed); the queue alone changes states.
#pragma once

#include <filesystem>

#include "coordinator/change_feed.h"
#include "coordinator/checkpoint_records.h"
#include "coordinator/database.h"
#include "coordinator/queue.h"
#include "coordinator/run_state.h"
#include "coordinator/store_views.h"
#include "coordinator/worker_registry.h"

namespace tallrec {

struct Store {
  // Opens (creating if needed) and migrates the file. Throws Error naming it.
  explicit Store(const std::filesystem::path& path)
      : database(path),
        queue(database),
        workers(database),
        checkpoints(database),
        changes(database),
        views(database) {}
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Database database;  // first: the parts hold its connection
  Queue queue;
  WorkerRegistry workers;
  CheckpointRecords checkpoints;
  ChangeFeed changes;
  StoreViews views;
};

}  // namespace tallrec
