#include "coordinator/slurm.h"

#include <sstream>

#include "common/error.h"
#include "common/subprocess.h"

namespace tallrec {
namespace {

// A value for the batch script: one line, single-quoted for the shell where it is an argument.
std::string one_line(const std::string& option, const std::string& value) {
  if (value.find_first_of("\n\r") != std::string::npos || value.find('\0') != std::string::npos)
    throw InputError(option + ": \"" + value.substr(0, 200) + "\" spans lines");
  if (value.size() > 4096) throw InputError(option + ": longer than 4096 bytes");
  return value;
}

std::string quoted(const std::string& option, const std::string& value) {
  std::string out = "'";
  for (char c : one_line(option, value))
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string worker_batch_script(const SlurmWorkerJob& j) {
  if (j.coordinator.rfind("tcp://", 0) != 0)
    throw InputError("--coordinator: \"" + j.coordinator + "\" is not tcp://HOST:PORT");
  if (j.workers < 1 || j.workers > 10000)
    throw InputError("--workers: " + std::to_string(j.workers) + " is not in 1..10000");
  if (j.gpus_per_worker < 0 || j.gpus_per_worker > 64)
    throw InputError("--gpus-per-worker: " + std::to_string(j.gpus_per_worker) +
                     " is not in 0..64");
  if (j.cpus_per_worker < 0)
    throw InputError("--cpus-per-worker: " + std::to_string(j.cpus_per_worker) + " is negative");
  if (j.log_dir.empty()) throw InputError("--log-dir: required (where the jobs' output goes)");
  // An #SBATCH line ends at whitespace, and % starts one of Slurm's filename patterns.
  if (j.log_dir.find_first_of(" \t%") != std::string::npos)
    throw InputError("--log-dir: \"" + j.log_dir.substr(0, 200) +
                     "\" holds a space or %, which an #SBATCH --output line cannot take");
  if (j.curve_key.empty() != j.coordinator_key.empty())
    throw InputError("--curve-key and --coordinator-key go together");
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# tallrec worker job (tallrec slurm submit): one `tallrec worker --exit-when-idle` per\n"
    << "# array task. SIGUSR1 before the time limit, and SIGTERM on preemption, requeue or\n"
    << "# scancel, make the worker checkpoint its runs and hand them back (docs/cluster.md).\n"
    << "#SBATCH --job-name=" << one_line("--job-name", j.job_name) << "\n"
    << "#SBATCH --array=0-" << j.workers - 1 << "\n"
    << "#SBATCH --requeue\n"
    << "#SBATCH --signal=B:USR1@" << j.warn_seconds << "\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --output=" << one_line("--log-dir", j.log_dir) << "/tallrec-worker-%A_%a.out\n";
  if (j.gpus_per_worker > 0) s << "#SBATCH --gres=gpu:" << j.gpus_per_worker << "\n";
  if (j.cpus_per_worker > 0) s << "#SBATCH --cpus-per-task=" << j.cpus_per_worker << "\n";
  const std::pair<const char*, const std::string*> plain[] = {{"mem", &j.mem},
                                                              {"partition", &j.partition},
                                                              {"time", &j.time},
                                                              {"account", &j.account},
                                                              {"qos", &j.qos}};
  for (const auto& [name, value] : plain)
    if (!value->empty())
      s << "#SBATCH --" << name << "=" << one_line(std::string("--") + name, *value) << "\n";
  for (const auto& arg : j.sbatch_args) s << "#SBATCH " << one_line("--sbatch", arg) << "\n";
  // The worker id names the array task, so a requeued task comes back as the same worker.
  s << "set -eu\n"
    << "id=\"slurm-${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}\"\n"
    << "exec " << quoted("tallrec", j.tallrec) << " worker --coordinator "
    << quoted("--coordinator", j.coordinator) << " --id \"$id\" --exit-when-idle"
    << " --work-dir " << quoted("--work-dir", j.work_dir) << "/\"$id\""
    << " --stop-grace " << j.stop_grace;
  // Slurm's CUDA_VISIBLE_DEVICES names the task's GPUs as CUDA numbers them in this job.
  if (j.gpus_per_worker > 0)
    s << " --gpus \"${CUDA_VISIBLE_DEVICES:?Slurm gave this task no GPUs}\"";
  else
    s << " --gpus none";
  if (j.threads > 0) s << " --threads " << j.threads;
  if (!j.curve_key.empty())
    s << " --curve-key " << quoted("--curve-key", j.curve_key) << " --coordinator-key "
      << quoted("--coordinator-key", j.coordinator_key);
  s << "\n";
  return s.str();
}

std::string sbatch(const std::string& script) {
  const ProcessResult r = run_process({"sbatch", "--parsable"}, script);
  if (r.exit_code != 0)
    throw Error("sbatch refused the worker job (exit " + std::to_string(r.exit_code) +
                "): " + trimmed(r.err));
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  std::string id = trimmed(r.out);
  id = id.substr(0, id.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error("sbatch printed no job id: \"" + trimmed(r.out).substr(0, 200) + "\"");
  return id;
}

std::vector<SlurmJob> squeue(const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return {};
  std::string ids;
  for (const auto& id : job_ids) ids += (ids.empty() ? "" : ",") + id;
  const ProcessResult r = run_process({"squeue", "-h", "-r", "-j", ids, "-o", "%i|%T|%r|%N"});
  // squeue exits 1 with "Invalid job id specified" once every job is gone.
  if (r.exit_code != 0 && r.err.find("Invalid job id") == std::string::npos)
    throw Error("squeue failed (exit " + std::to_string(r.exit_code) + "): " + trimmed(r.err));
  std::vector<SlurmJob> jobs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    SlurmJob j;
    std::getline(f, j.id, '|');
    std::getline(f, j.state, '|');
    std::getline(f, j.reason, '|');
    std::getline(f, j.node);
    if (!j.id.empty()) jobs.push_back(j);
  }
  return jobs;
}

void scancel(const std::vector<std::string>& job_ids, bool pending_only) {
  if (job_ids.empty()) return;
  std::vector<std::string> argv = {"scancel"};
  if (pending_only) argv.push_back("--state=PENDING");
  argv.insert(argv.end(), job_ids.begin(), job_ids.end());
  const ProcessResult r = run_process(argv);
  if (r.exit_code != 0)
    throw Error("scancel failed (exit " + std::to_string(r.exit_code) + "): " + trimmed(r.err));
}

}  // namespace tallrec
