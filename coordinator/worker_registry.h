// The workers the coordinator has heard of: their rows (host, slots, GPUs, where Slurm runs
// them), their liveness, the CURVE key each worker id is bound to, and the Slurm worker jobs
// submitted for them. Over the store's one connection (coordinator/database.h); each change is
// one transaction and appends to the change feed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace tallrec {

class Database;

struct WorkerRow {
  std::string id, host, version;
  int64_t slots;
  nlohmann::json gpus;
  double last_seen;
  std::vector<int64_t> attempts;  // the live attempts it holds
  bool alive = true;              // false once silent past its lease (mark_silent)
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

class WorkerRegistry {
 public:
  explicit WorkerRegistry(Database& database);

  // A worker announced itself (READY): insert or refresh its row, alive again.
  // `slurm`: where Slurm runs it ({job, array_job, array_task, node, restarts, gpus}), or null.
  void announce(const std::string& id, const std::string& host, const nlohmann::json& gpus,
                int64_t slots, const std::string& version, double now,
                const nlohmann::json& slurm = nullptr);
  // A worker about to lease without having announced itself (a REQUEST before READY) gets a bare
  // row, so that its attempts can name it (Queue::lease_next); a known worker's row is untouched.
  void ensure_known(const std::string& id, double now);
  // A sign of life from a worker (its HEARTBEAT): refreshes last_seen (a lost worker is back).
  void seen(const std::string& id, double now);
  // Workers not heard from since `silent_since` are lost; returns how many were marked.
  int mark_silent(double silent_since, double now);
  // Every worker, by id, with the live attempts it holds.
  std::vector<WorkerRow> list();

  // The CURVE key a worker id is bound to ("" when none yet, or without CURVE), and binding one:
  // the first key a worker id is seen with is its key from then on.
  std::string curve_key(const std::string& id);
  void bind_curve_key(const std::string& id, const std::string& key);

  // Slurm worker jobs: recorded when submitted, listed newest first.
  void record_slurm_job(const SlurmJobRow& job);
  std::vector<SlurmJobRow> slurm_jobs();

 private:
  sqlite3* db_;
  const std::string& path_;
};

}  // namespace tallrec
