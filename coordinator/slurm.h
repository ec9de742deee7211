// Workers as Slurm jobs (docs/cluster.md). A worker job is an array of N tasks, each running one
// `tallrec worker --exit-when-idle` on its task's GPUs. The batch script asks Slurm for requeue
// and for a warning signal (SIGUSR1 to the batch shell, which is the worker: `exec`) before the
// time limit; preemption, `scontrol requeue` and `scancel` send SIGTERM. Either way the worker
// has its trainers checkpoint at the next optimizer step and reports the attempt preempted.
// The commands (sbatch, squeue, scancel) are run directly, with SLURM_CONF from the environment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tallrec {

struct SlurmWorkerJob {
  std::string coordinator;                         // tcp://HOST:PORT the workers connect to
  int workers = 1;                                 // array tasks, one worker each
  int gpus_per_worker = 1;                         // --gres=gpu:G; 0: CPU workers
  int cpus_per_worker = 0;                         // --cpus-per-task (0: the partition's default)
  std::string mem, partition, time, account, qos;  // passed to sbatch when not empty
  std::vector<std::string> sbatch_args;            // more #SBATCH lines, as given
  std::string curve_key, coordinator_key;          // CURVE key files the workers read
  std::string work_dir = "/tmp/tallrec-worker";    // node-local scratch; the worker id is appended
  std::string log_dir;                             // the jobs' output files (required)
  std::string tallrec;                             // the tallrec binary the tasks run (absolute)
  std::string job_name = "tallrec-worker";
  int warn_seconds = 90;  // SIGUSR1 this long before the time limit
  int stop_grace = 20;    // the worker's --stop-grace: below the cluster's KillWait
  int threads = 0;        // the worker's --threads (0: all the task's CPUs)
};

// The batch script. Throws InputError naming the option that is out of range or unsafe (a
// newline, which would end an #SBATCH line).
std::string worker_batch_script(const SlurmWorkerJob& job);

// Submits `script` with `sbatch --parsable` (script on stdin) and returns the job id. Throws
// Error with sbatch's own message when it refuses.
std::string sbatch(const std::string& script);

struct SlurmJob {
  std::string id;      // "123" or, for an array task, "123_4"
  std::string state;   // PENDING, RUNNING, ...
  std::string reason;  // Priority, Resources, BeginTime, None, ...
  std::string node;    // where it runs ("" while pending)
};

// The tasks of these jobs that Slurm still knows (squeue -r): pending, running or completing.
std::vector<SlurmJob> squeue(const std::vector<std::string>& job_ids);

// Cancels the given job or array tasks (scancel); `pending_only` leaves running tasks alone.
void scancel(const std::vector<std::string>& job_ids, bool pending_only);

}  // namespace tallrec
