// `tallrec cancel | retry | workers`: act on runs and look at workers through the store file.
// The coordinator needs no message for these: it tells a worker to stop an attempt the store no
// longer holds live at the worker's next heartbeat (docs/dev/protocol.md §3.7), and a retried run
// is leased like any queued one, resuming from its newest stored checkpoint.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/error.h"
#include "coordinator/store.h"

namespace tallrec {
namespace {

// Applies `change` to each run; reports each, and fails (exit 1) if any could not change.
void change_runs(Store& store, const std::vector<int64_t>& ids, const char* verb,
                 const std::string& allowed, bool (Queue::*change)(int64_t, double)) {
  int refused = 0;
  for (int64_t id : ids) {
    const std::optional<RunState> was = store.views.run_state(id);
    if (!was)
      throw InputError("run " + std::to_string(id) + " is not in the store (see `tallrec runs`)");
    if ((store.queue.*change)(id, unix_time())) {
      std::printf("run %lld %s (was %s)\n", static_cast<long long>(id), verb, run_state_name(*was));
    } else {
      std::printf("run %lld is %s: only %s runs can be %s\n", static_cast<long long>(id),
                  run_state_name(*was), allowed.c_str(), verb);
      ++refused;
    }
  }
  if (refused)
    throw Error(std::to_string(refused) + " of " + std::to_string(ids.size()) + " runs not " +
                verb);
}

}  // namespace

void add_run_commands(CLI::App& app) {
  struct Args {
    std::string db = default_store_path(), sweep;
    std::vector<int64_t> runs;
    bool json = false;
  };
  auto a = std::make_shared<Args>();

  auto* cancel = app.add_subcommand(
      "cancel", "Cancel runs (the coordinator stops their trainers within a heartbeat)");
  cancel->add_option("runs", a->runs, "Run ids (see `tallrec runs`)");
  cancel->add_option("--sweep", a->sweep, "Cancel every unfinished run of this sweep");
  cancel->add_option("--db", a->db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  cancel->callback([a] {
    if (a->runs.empty() == a->sweep.empty())
      throw InputError("cancel: name run ids or --sweep, not both");
    require_existing_store(a->db);
    Store store(a->db);
    std::vector<int64_t> ids = a->runs;
    if (!a->sweep.empty()) {
      require_sweep(store, a->sweep);
      for (RunState state : kAllRunStates)
        if (is_unfinished(state))
          for (const auto& r : store.views.runs(a->sweep, state)) ids.push_back(r.id);
      if (ids.empty()) std::printf("sweep %s has no unfinished run\n", a->sweep.c_str());
    }
    change_runs(store, ids, "canceled", run_state_names(is_unfinished), &Queue::cancel);
  });

  auto* retry = app.add_subcommand(
      "retry",
      "Queue failed or canceled runs again; each resumes from its newest stored checkpoint");
  retry->add_option("runs", a->runs, "Run ids (see `tallrec runs --state failed`)")->required();
  retry->add_option("--db", a->db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  retry->callback([a] {
    require_existing_store(a->db);
    Store store(a->db);
    change_runs(store, a->runs, "queued again", run_state_names(is_retryable), &Queue::retry);
  });

  auto* workers = app.add_subcommand(
      "workers", "Workers the coordinator has seen: last heartbeat and the attempts they hold");
  workers->add_option("--db", a->db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  workers->add_flag("--json", a->json, "Print JSON");
  workers->callback([a] {
    require_existing_store(a->db);
    Store store(a->db);
    const double t = unix_time();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : store.workers.list()) {
      if (a->json) {
        out.push_back(worker_row_json(w));
        continue;
      }
      std::string held;
      for (int64_t id : w.attempts) held += (held.empty() ? "" : ",") + std::to_string(id);
      std::string slurm;
      if (w.slurm.is_object()) {
        const auto field = [&](const char* k) { return w.slurm.value(k, std::string("?")); };
        slurm = "  slurm job " +
                (w.slurm.contains("array_job") ? field("array_job") + "_" + field("array_task")
                                               : field("job")) +
                " on " + field("node") + " gpus " + w.slurm.value("gpus", std::string("-")) +
                (w.slurm.contains("restarts") ? " (requeued " + field("restarts") + "x)" : "");
      }
      std::printf("%-24s %-16s slots %lld  last heard %6.0f s ago  attempts %s%s\n", w.id.c_str(),
                  w.host.c_str(), static_cast<long long>(w.slots), t - w.last_seen,
                  held.empty() ? "-" : held.c_str(), slurm.c_str());
    }
    if (a->json) std::cout << out.dump() << "\n";
  });
}

}  // namespace tallrec
