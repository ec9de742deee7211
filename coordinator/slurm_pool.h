// The elastic pool (`tallrec coordinator --slurm-pool MAX`): keeps the number of pending and
// running worker tasks in step with the queue, up to MAX. It submits when runs wait and no worker
// is free, never when nothing is queued, and cancels its own pending tasks once the queue has
// stayed empty a while; idle workers exit on their own (--exit-when-idle). Against churn: a
// worker that is starting or pending counts as capacity, an empty queue must last `idle_seconds`
// before anything is cancelled, and at most `submissions_per_minute` sbatch calls are made.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "coordinator/slurm.h"

namespace tallrec {

struct Store;

struct SlurmPoolOptions {
  int max_workers = 0;  // MAX: pending + running pool tasks never exceed it
  SlurmWorkerJob job;   // what each task runs (coordinator address, GPUs, partition, ...)
  double interval_seconds = 5;
  double idle_seconds = 30;  // the queue must stay empty this long before pending tasks go
  int submissions_per_minute = 2;
};

// What the pool sees at one tick.
struct PoolView {
  int64_t ready_runs = 0;     // queued runs whose backoff has passed
  int64_t free_capacity = 0;  // free slots of live workers, plus pool tasks not yet serving
  int64_t pending_tasks = 0;  // the pool's tasks Slurm has not started
  int64_t active_tasks = 0;   // the pool's pending + running tasks
};

struct PoolDecision {
  int64_t submit = 0;           // tasks to submit now (one array)
  bool cancel_pending = false;  // cancel the pool's pending tasks
};

// The rule, on its own so that it can be tested without a cluster. `queue_empty_for` is how long
// no run has been ready; `recent_submissions` how many sbatch calls the last minute saw.
PoolDecision decide_pool(const PoolView& view, const SlurmPoolOptions& options,
                         double queue_empty_for, int recent_submissions);

class SlurmPool {
 public:
  explicit SlurmPool(SlurmPoolOptions options);
  // One look at the queue and Slurm, and what follows; errors (sbatch refused) are printed and
  // tried again at a later tick, never thrown.
  void tick(Store& store, double now);

 private:
  SlurmPoolOptions options_;
  std::set<std::string> jobs_;      // the pool's job ids (also recorded in the store)
  std::set<std::string> gone_;      // recorded jobs Slurm no longer lists: never asked about again
  std::deque<double> submissions_;  // when each recent sbatch call was made
  double queue_nonempty_at_ = 0;    // the last tick that saw a ready run
  bool seen_ready_ = false;
};

}  // namespace tallrec
