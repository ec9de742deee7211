#include "coordinator/slurm_pool.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "coordinator/store.h"

namespace tallrec {

PoolDecision decide_pool(const PoolView& v, const SlurmPoolOptions& o, double queue_empty_for,
                         int recent_submissions) {
  PoolDecision d;
  if (v.ready_runs == 0) {
    d.cancel_pending = v.pending_tasks > 0 && queue_empty_for >= o.idle_seconds;
    return d;
  }
  const int64_t demand = v.ready_runs - v.free_capacity;
  const int64_t room = o.max_workers - v.active_tasks;
  if (demand > 0 && room > 0 && recent_submissions < o.submissions_per_minute)
    d.submit = std::min(demand, room);
  return d;
}

SlurmPool::SlurmPool(SlurmPoolOptions options) : options_(std::move(options)) {
  worker_batch_script(options_.job);  // bad options fail at start, not at the first submission
}

void SlurmPool::tick(Store& store, double now) {
  try {
    std::vector<std::string> all;  // every recorded worker job: their workers are present or gone
    for (const auto& j : store.workers.slurm_jobs()) {
      if (gone_.count(j.job_id)) continue;  // ended: never asked about again
      all.push_back(j.job_id);
      if (j.source == "pool") jobs_.insert(j.job_id);  // also those of an earlier coordinator
    }
    const std::vector<SlurmJob> tasks = squeue(all);
    PoolView v;
    std::set<std::string> running;     // worker ids of running tasks ("slurm-J_T")
    std::set<std::string> pool_alive;  // pool jobs Slurm still has
    std::vector<std::string> pool_running;
    for (const auto& t : tasks) {
      const std::string job = t.id.substr(0, t.id.find('_'));
      const bool ours = jobs_.count(job) > 0;
      if (ours) pool_alive.insert(job);
      if (t.state == "PENDING") {
        if (ours) ++v.pending_tasks, ++v.active_tasks;
      } else {
        running.insert("slurm-" + t.id);
        if (ours) ++v.active_tasks, pool_running.push_back("slurm-" + t.id);
      }
    }
    for (auto it = jobs_.begin(); it != jobs_.end();)  // finished pool jobs: forget them
      it = pool_alive.count(*it) ? std::next(it) : jobs_.erase(it);
    // Jobs Slurm no longer lists have ended (a requeued one is listed while it pends), so the
    // list squeue is asked about stays as short as what is live.
    std::set<std::string> listed;
    for (const auto& t : tasks) listed.insert(t.id.substr(0, t.id.find('_')));
    for (const auto& id : all)
      if (!listed.count(id)) gone_.insert(id);
    v.ready_runs = store.queue.count_ready_runs(now);
    // Capacity: pending tasks, running pool tasks whose worker has not said READY yet, and the
    // free slots of live workers (a Slurm worker only while its task runs).
    v.free_capacity = v.pending_tasks;
    std::set<std::string> serving;
    for (const auto& w : store.workers.list()) {
      if (!w.alive || (w.slurm.is_object() && !running.count(w.id))) continue;
      serving.insert(w.id);
      v.free_capacity += std::max<int64_t>(0, w.slots - int64_t(w.attempts.size()));
    }
    for (const auto& id : pool_running)
      if (!serving.count(id)) ++v.free_capacity;

    if (!seen_ready_ || v.ready_runs > 0) queue_nonempty_at_ = now;
    seen_ready_ = true;
    while (!submissions_.empty() && submissions_.front() < now - 60) submissions_.pop_front();
    const PoolDecision d =
        decide_pool(v, options_, now - queue_nonempty_at_, int(submissions_.size()));
    if (d.submit > 0) {
      SlurmWorkerJob job = options_.job;
      job.workers = int(d.submit);
      const std::string script = worker_batch_script(job);
      submissions_.push_back(now);  // a refused sbatch counts too: no retry storm
      // Slurm fails a task whose output file cannot be opened, silently: the folder must exist.
      std::filesystem::create_directories(job.log_dir);
      const std::string id = sbatch(script);
      jobs_.insert(id);
      store.workers.record_slurm_job({id, d.submit, "pool", now, script});
      std::fprintf(stderr,
                   "coordinator: slurm pool: submitted job %s (%lld workers): %lld runs ready, "
                   "capacity %lld, %lld of at most %d workers pending or running before\n",
                   id.c_str(), static_cast<long long>(d.submit),
                   static_cast<long long>(v.ready_runs), static_cast<long long>(v.free_capacity),
                   static_cast<long long>(v.active_tasks), options_.max_workers);
    }
    if (d.cancel_pending) {
      scancel(std::vector<std::string>(jobs_.begin(), jobs_.end()), /*pending_only=*/true);
      std::fprintf(stderr,
                   "coordinator: slurm pool: cancelled %lld pending workers: no run ready for "
                   "%.0f s\n",
                   static_cast<long long>(v.pending_tasks), now - queue_nonempty_at_);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coordinator: slurm pool: %s (trying again at the next tick)\n", e.what());
  }
}

}  // namespace tallrec
