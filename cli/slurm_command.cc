// `tallrec slurm submit | status`: worker jobs on a Slurm cluster (docs/cluster.md). The batch
// script and the Slurm commands are coordinator/slurm.h; this file is options and printing.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/clock.h"
#include "coordinator/slurm.h"
#include "coordinator/store.h"

namespace tallrec {
namespace fs = std::filesystem;

// The options every lab needs, shared by `slurm submit` and `coordinator --slurm-pool`.
void add_slurm_job_options(CLI::App& cmd, SlurmWorkerJob& j, bool in_coordinator) {
  cmd.add_option("--gpus-per-worker", j.gpus_per_worker, "GPUs per worker (0: CPU workers)")
      ->capture_default_str();
  cmd.add_option("--cpus-per-worker", j.cpus_per_worker, "CPUs per worker (0: Slurm's default)");
  cmd.add_option("--mem", j.mem, "Memory per worker, as sbatch --mem takes it (e.g. 64G)");
  cmd.add_option("--partition", j.partition, "Slurm partition");
  cmd.add_option("--time", j.time, "Time limit per worker job, as sbatch --time takes it");
  cmd.add_option("--account", j.account, "Slurm account");
  cmd.add_option("--qos", j.qos, "Slurm QOS");
  cmd.add_option("--sbatch", j.sbatch_args,
                 "More sbatch options, one per use (e.g. --sbatch=--constraint=a100)")
      ->allow_extra_args(false);
  // In the coordinator, --curve-key is its own key: the workers' keys get names of their own.
  cmd.add_option(in_coordinator ? "--slurm-worker-key" : "--curve-key", j.curve_key,
                 "CURVE: the workers' key file (on the nodes)");
  cmd.add_option(in_coordinator ? "--slurm-coordinator-pub" : "--coordinator-key",
                 j.coordinator_key, "CURVE: the coordinator's public key file (on the nodes)");
  cmd.add_option("--work-dir", j.work_dir,
                 "Node-local scratch for token caches and run folders (the worker id is appended)")
      ->capture_default_str();
  cmd.add_option(
      "--log-dir", j.log_dir,
      "Folder for the jobs' output files, on a shared filesystem (default ./slurm-logs)");
  cmd.add_option("--threads", j.threads, "CPU threads per trainer (0: all the task's CPUs)");
  cmd.add_option("--warn-seconds", j.warn_seconds,
                 "SIGUSR1 this many seconds before the time limit: the runs checkpoint and go back")
      ->capture_default_str();
  cmd.add_option("--stop-grace", j.stop_grace,
                 "The workers' --stop-grace: keep it below the cluster's KillWait")
      ->capture_default_str();
}

// Fills in what the options leave to the machine: this tallrec binary and an absolute log folder.
void complete_slurm_job(SlurmWorkerJob& j) {
  if (j.tallrec.empty()) j.tallrec = fs::read_symlink("/proc/self/exe").string();
  if (j.log_dir.empty()) j.log_dir = "slurm-logs";
  j.log_dir = fs::absolute(j.log_dir).lexically_normal().string();
}

void add_slurm_commands(CLI::App& app) {
  auto* slurm = app.add_subcommand("slurm", "Workers as Slurm jobs: submit a worker array, see it");
  slurm->require_subcommand(1);

  auto job = std::make_shared<SlurmWorkerJob>();
  auto db = std::make_shared<std::string>(default_store_path());
  auto dry_run = std::make_shared<bool>(false);
  auto* submit = slurm->add_subcommand(
      "submit", "Submit a job array of N tasks, each one `tallrec worker --exit-when-idle`");
  submit->add_option("--coordinator", job->coordinator, "The coordinator, tcp://HOST:PORT")
      ->required();
  submit->add_option("--workers", job->workers, "Array tasks, one worker each")->required();
  add_slurm_job_options(*submit, *job, /*in_coordinator=*/false);
  submit->add_option("--db", *db,
                     "The coordinator's store: the job is recorded there for `slurm status`");
  submit->add_flag("--dry-run", *dry_run, "Print the batch script; submit nothing");
  submit->callback([job, db, dry_run] {
    complete_slurm_job(*job);
    const std::string script = worker_batch_script(*job);
    if (*dry_run) {
      std::cout << script;
      return;
    }
    require_existing_store(*db);
    Store store(*db);
    fs::create_directories(job->log_dir);
    const std::string id = sbatch(script);
    store.workers.record_slurm_job({id, job->workers, "submit", unix_time(), script});
    std::printf("%s\n", id.c_str());
    std::fprintf(stderr, "slurm: submitted job %s: %d worker(s) for %s; output in %s\n", id.c_str(),
                 job->workers, job->coordinator.c_str(), job->log_dir.c_str());
  });

  auto json = std::make_shared<bool>(false);
  auto* status = slurm->add_subcommand(
      "status", "The recorded worker jobs' tasks as Slurm sees them, and their workers");
  status->add_option("--db", *db, "The coordinator's store (default $TALLREC_DB or ./tallrec.db)");
  status->add_flag("--json", *json, "Print JSON");
  status->callback([db, json] {
    require_existing_store(*db);
    Store store(*db);
    std::vector<std::string> ids;
    const auto jobs = store.workers.slurm_jobs();
    for (const auto& j : jobs) ids.push_back(j.job_id);
    const auto tasks = squeue(ids);
    nlohmann::json out = {{"jobs", nlohmann::json::array()}, {"tasks", nlohmann::json::array()}};
    for (const auto& j : jobs)
      out["jobs"].push_back({{"job", j.job_id},
                             {"tasks", j.tasks},
                             {"source", j.source},
                             {"submitted", j.submitted}});
    for (const auto& t : tasks)
      out["tasks"].push_back(
          {{"id", t.id}, {"state", t.state}, {"reason", t.reason}, {"node", t.node}});
    if (*json) {
      std::cout << out.dump() << "\n";
      return;
    }
    size_t pending = 0, running = 0;
    for (const auto& t : tasks) (t.state == "PENDING" ? pending : running) += 1;
    std::printf("%zu job(s) recorded; tasks Slurm still has: %zu pending, %zu running\n",
                jobs.size(), pending, running);
    for (const auto& t : tasks)
      std::printf("  %-16s %-10s %-16s %s\n", t.id.c_str(), t.state.c_str(),
                  t.state == "PENDING" ? t.reason.c_str() : "",
                  t.node.empty() ? "-" : t.node.c_str());
  });
}

}  // namespace tallrec
