// The coordinator's store and queue: one SQLite file in WAL mode. Every state change is one
// transaction; readers (CLI, dashboard) never block the writer. The schema is versioned by
// migrations (table schema_version); opening an older file upgrades it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/grid.h"
#include "coordinator/run_state.h"

struct sqlite3;

namespace tallrec {

struct SubmitResult {
  int64_t sweep_id;
  bool new_sweep;
  size_t added, existing;  // runs new to the store / already there (same key)
};

struct SweepStatus {
  int64_t id;
  std::string name;
  std::map<std::string, int64_t> runs_by_state;  // every state present, 0 when none
  // Seconds until the sweep's unfinished runs are done, from the measured wall time of its
  // succeeded attempts (lease to finish) and how many run at once now: mean duration x (queued +
  // leased + half the running) / max(1, leased + running). Negative when nothing has finished yet.
  double eta_seconds = -1;
  int64_t total() const;
};

// A lease on a run: the worker holds it while heartbeats renew it. Every message about the
// attempt carries its id; a stale id (the lease expired, the run was cancelled or re-leased)
// is refused, so a zombie worker can change nothing (fencing).
struct Lease {
  int64_t attempt_id;
  int64_t run_id;
  std::string run_key;
  std::string
      spec_json;  // the resolved run spec as stored (JSON text: sent as is, never re-parsed)
  int64_t attempt_number;  // 1 for the first try
  double lease_until;
  // Set once an out-of-memory halved them (Store::end_reported); the worker overrides the spec's.
  std::optional<int64_t> micro_batch_size, eval_batch_size;
};

struct RetryPolicy {
  double lease_seconds = 30;
  double backoff_base = 5;  // seconds before attempt k+1: base * 2^(k-1), capped
  double backoff_max = 300;
  double lease_arrival =
      10;  // seconds a LEASE may take to show in its worker's heartbeats before it is released
  int64_t max_preemptions = 20;  // a run preempted more often than this fails, saying so
};

struct RunRow {
  int64_t id;
  std::string key, state, domain;
  int64_t sample;
  uint64_t seed;
  int64_t attempts;
  nlohmann::json spec;           // as the grid expanded it
  nlohmann::json result;         // the finished event, or null
  std::string reason;            // why the newest attempt ended (a failure's reason), or ""
  int64_t micro_batch_size = 0;  // set once an out-of-memory halved it (0: the spec's)
  int64_t preemptions = 0;
};

// A checkpoint stored under the coordinator's artifacts folder (`path` is relative to it).
struct StoredCheckpoint {
  int64_t step;
  std::string path;    // runs/<run key>/step-NNNNNNNN
  std::string sha256;  // of its manifest.json
  int64_t bytes;
};

struct WorkerRow {
  std::string id, host, version;
  int64_t slots;
  nlohmann::json gpus;
  double last_seen;
  std::vector<int64_t> attempts;  // the live attempts it holds
  bool alive = true;              // false once silent past its lease (Store::mark_silent_workers)
  nlohmann::json slurm;           // its Slurm job, array task, node and GPUs, or null
};

// A worker job submitted to Slurm (`tallrec slurm submit` or the coordinator's elastic pool).
struct SlurmJobRow {
  std::string job_id;
  int64_t tasks;
  std::string source;  // "submit" or "pool"
  double submitted;
  std::string script;
};

// One entry of the change feed: kind "run" (a state change), "sweep" (submitted), "metric" (new
// points of an attempt), "checkpoint" (stored), "worker" (joined or lost).
struct Change {
  int64_t id;
  double time;
  std::string kind;
  nlohmann::json body;
};

// A run of a sweep as the results heatmap needs it.
struct RunOutcome {
  std::string domain;
  int64_t sample;
  uint64_t seed;
  std::string state;
  nlohmann::json result;  // the finished event, or null
  nlohmann::json spec;    // as the grid expanded it
};

struct MetricPoint {
  int64_t attempt, step;
  double value;
};

// How the CLI's --json and the HTTP API show a run row, a worker and a sweep's counts.
nlohmann::json run_row_json(const RunRow& r);
nlohmann::json worker_row_json(const WorkerRow& w);
nlohmann::json sweep_status_json(const SweepStatus& s);

class Store {
 public:
  // Opens (creating if needed) and migrates the database. Throws Error naming the file.
  explicit Store(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Group commit: the changes made while a Batch is open share one COMMIT (each is still all or
  // nothing, as a savepoint). The broker opens one per burst of messages and sends its replies
  // only after commit(), so nothing is acknowledged before it is durable.
  class Batch {
   public:
    explicit Batch(Store& store);
    ~Batch();  // rolls back unless committed
    void commit();

   private:
    Store& store_;
    bool open_;
  };

  // One message's changes inside a Batch: kept by release(), undone if destroyed before it.
  class Savepoint {
   public:
    explicit Savepoint(Store& store);
    ~Savepoint();
    void release();

   private:
    Store& store_;
    bool open_;
  };

  int schema_version();
  // WAL checkpoints: by default SQLite runs them inside whichever commit crosses 1000 pages,
  // which stalls that writer. The coordinator turns that off for the broker's connection and
  // checkpoints from another thread (PASSIVE: never waits for, nor blocks, the writer).
  void disable_auto_checkpoint();
  void checkpoint_wal();
  // Adds the grid's sweep (by name) and its runs in one transaction; runs already stored
  // (same key, from this or another sweep) are linked, not duplicated.
  SubmitResult submit(const Grid& grid);
  std::vector<SweepStatus> status();
  std::vector<RunRow> runs(const std::string& sweep_name = "", const std::string& state = "",
                           int64_t limit = -1, int64_t offset = 0);
  std::string integrity_check();

  // Queue and lease transitions, one transaction each. `now` is seconds since the epoch.
  // The highest-priority queued run whose backoff has passed becomes leased to `worker`.
  std::optional<Lease> lease_next(const std::string& worker, double now,
                                  const RetryPolicy& policy = {});
  // False (and nothing changes) when the attempt is not the run's live attempt any more.
  bool heartbeat(int64_t attempt_id, double now, const RetryPolicy& policy = {});
  bool mark_running(int64_t attempt_id, double now);
  bool finish(int64_t attempt_id, const nlohmann::json& result, double now);
  // A failed attempt: the run is queued again after a backoff, unless `retryable` is false or
  // the run has used max_attempts, in which case it fails.
  bool fail(int64_t attempt_id, const std::string& reason, bool retryable, double now,
            const RetryPolicy& policy = {});
  // A preempted attempt (its trainer checkpointed and stopped on a signal): the run is queued
  // again at once, with no backoff, and the attempt is not counted against max_attempts; past
  // policy.max_preemptions the run fails with a reason that says so. False when stale.
  bool preempt(int64_t attempt_id, const std::string& reason, double now,
               const RetryPolicy& policy = {});
  // An attempt that ran out of memory (its `failed` event's out_of_memory says where): in a train
  // step or an evaluation (validation or test), the run is queued again at once, without spending
  // an attempt, with half the micro-batch (the largest divisor of batch_size at most half of it, so
  // the global batch and the optimizer steps stay the same: twice the accumulation) and half the
  // evaluation batch; at micro-batch 1, or out of memory while loading, the run fails. False when
  // stale.
  bool out_of_memory(int64_t attempt_id, const nlohmann::json& failed_event, double now);
  // The worker's DONE for an attempt: the queue's rule for how it ended. Succeeded when the
  // trainer exited 0 after its `finished` event; preempted after a `preempted` event; otherwise
  // out_of_memory() after a `failed` event that says so; otherwise failed (retryable unless the
  // trainer said not, or exited 2 for bad input). False when stale.
  bool end_reported(int64_t attempt_id, int exit_code, const std::string& stderr_tail, double now,
                    const RetryPolicy& policy = {});
  // Leases past their time are lost: each such run is failed or re-queued as by fail(..., true).
  // Returns the number of attempts expired.
  int expire_leases(double now, const RetryPolicy& policy = {});
  bool cancel(int64_t run_id, double now);
  // Queued runs whose backoff has passed at `now`: what a free worker would be leased.
  int64_t count_ready_runs(double now);
  // A failed or cancelled run goes back to the queue with a fresh attempt budget and a fresh
  // preemption count (a micro-batch an out-of-memory halved stays halved).
  bool retry(int64_t run_id, double now);
  std::string run_state(int64_t run_id);
  // Leases of `worker` older than `leased_before` that it does not list as running (a LEASE lost
  // on the way, or one it could not take) go back to the queue at once, without costing the run
  // an attempt. Returns how many.
  int release_unlisted(const std::string& worker, const std::vector<int64_t>& listed,
                       double leased_before, double now);
  // A worker announced itself (READY): insert or refresh its row.
  // `slurm`: where Slurm runs it ({job, array_job, array_task, node, restarts, gpus}), or null.
  void register_worker(const std::string& id, const std::string& host, const nlohmann::json& gpus,
                       int64_t slots, const std::string& version, double now,
                       const nlohmann::json& slurm = nullptr);
  // Stores event `seq` of a live attempt once (a re-sent duplicate is accepted and ignored);
  // progress and eval events also become metric rows, and `started` marks the run running.
  // False if the attempt is stale.
  bool record_event(int64_t attempt_id, int64_t seq, const nlohmann::json& event);
  int64_t event_count(int64_t attempt_id);
  // The attempt's last stored `finished`, `failed` or `preempted` event, or null.
  nlohmann::json last_outcome(int64_t attempt_id);
  // The CURVE key a worker id is bound to ("" when none yet, or without CURVE), and binding one:
  // the first key a worker id is seen with is its key from then on.
  std::string worker_curve_key(const std::string& id);
  void bind_worker_curve_key(const std::string& id, const std::string& key);
  // The worker id that leased the attempt ("" when there is no such attempt): messages about an
  // attempt are taken only from its holder (DESIGN.md, Coordinator).
  std::string attempt_holder(int64_t attempt_id);
  // The run (id, key) of a live attempt, or nullopt when the attempt is stale.
  std::optional<std::pair<int64_t, std::string>> live_attempt(int64_t attempt_id);
  // Records a verified checkpoint of a live attempt's run and forgets the run's other checkpoints
  // except `best_step`'s. Returns the paths no longer recorded, for the caller to delete, or
  // nullopt (nothing recorded) when the attempt is stale.
  std::optional<std::vector<std::string>> record_checkpoint(int64_t attempt_id,
                                                            const StoredCheckpoint& checkpoint,
                                                            int64_t best_step, double now);
  // The run's recorded checkpoints, oldest first.
  std::vector<StoredCheckpoint> checkpoints(int64_t run_id);
  std::vector<WorkerRow> workers();
  // A sign of life from a worker (its HEARTBEAT): refreshes last_seen (a lost worker is back).
  void worker_seen(const std::string& id, double now);
  // Workers not heard from since `silent_since` are lost; returns how many were marked.
  int mark_silent_workers(double silent_since, double now);
  // Slurm worker jobs: recorded when submitted, listed newest first.
  void record_slurm_job(const SlurmJobRow& job);
  std::vector<SlurmJobRow> slurm_jobs();
  // The change feed after id `after`, oldest first, at most `limit` entries.
  std::vector<Change> changes_since(int64_t after, int64_t limit = 1000);
  int64_t last_change_id();
  // Read views for the HTTP API (coordinator/store_views.cc).
  std::optional<nlohmann::json> sweep_document(const std::string& name);  // id, name, grid, ...
  std::vector<RunOutcome> run_outcomes(const std::string& sweep_name);
  int64_t count_runs(const std::string& sweep_name = "", const std::string& state = "");
  std::map<std::string, int64_t> runs_by_state();            // every run in the store
  std::optional<nlohmann::json> run_detail(int64_t run_id);  // spec, result, attempts, checkpoints
  std::vector<MetricPoint> metric_series(int64_t run_id, const std::string& name);
  nlohmann::json run_events(int64_t run_id, int64_t after_id, int64_t limit);
  // Results of a sweep's succeeded runs: (spec, result) pairs.
  std::vector<std::pair<nlohmann::json, nlohmann::json>> results(const std::string& sweep_name);

 private:
  void exec(const char* sql);
  void migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace tallrec
