// `tallrec coordinator` (the store plus the TRP/1 broker) and `tallrec worker` (the agent), each
// serving until SIGINT or SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "coordinator/broker.h"
#include "coordinator/store.h"
#include "common/curve_keys.h"
#include "common/error.h"
#include "worker/agent.h"
#include "worker/gpus.h"

#include <unistd.h>

namespace tallrec {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }
}  // namespace

void add_coordinator_command(CLI::App& app) {
  struct Args { std::string db = "tallrec.db", listen = "tcp://127.0.0.1:5555", artifacts; double lease_seconds = 30, backoff_seconds = 5; std::string curve_key, worker_keys, trace; };
  auto args = std::make_shared<Args>();
  auto* c = app.add_subcommand("coordinator", "Serve the store to workers over ZeroMQ (TRP/1, docs/protocol.md) until Ctrl-C");
  c->add_option("--db", args->db, "Store file")->capture_default_str();
  c->add_option("--listen", args->listen, "ZeroMQ endpoint to bind (127.0.0.1 unless told otherwise)")->capture_default_str();
  c->add_option("--artifacts", args->artifacts, "Folder for stored checkpoints (default: artifacts/ next to the store)");
  c->add_option("--curve-key", args->curve_key, "CURVE: the coordinator's key file (tallrec keys coordinator)");
  c->add_option("--worker-keys", args->worker_keys, "CURVE: folder of the .pub keys of the workers let in");
  c->add_option("--trace", args->trace, "Append every TRP/1 message in and out to this file (JSON lines)");
  c->add_option("--lease-seconds", args->lease_seconds, "How long a worker's silence is tolerated")->capture_default_str();
  c->add_option("--backoff-seconds", args->backoff_seconds, "Wait before a failed run's next attempt (doubles per attempt, up to 300 s)")
      ->capture_default_str();
  c->callback([args] {
    Store store(args->db);
    RetryPolicy policy;
    policy.lease_seconds = args->lease_seconds;
    policy.backoff_base = args->backoff_seconds;
    const std::filesystem::path artifacts =
        args->artifacts.empty() ? std::filesystem::absolute(args->db).parent_path() / "artifacts" : std::filesystem::path(args->artifacts);
    if (args->curve_key.empty() != args->worker_keys.empty())
      throw InputError("coordinator: --curve-key and --worker-keys go together");
    std::optional<CurveServer> curve;
    if (!args->curve_key.empty()) {
      const CurveKeyPair own = read_curve_key_pair(args->curve_key);
      curve = CurveServer{own.public_key, own.secret_key, read_curve_public_keys(args->worker_keys)};
    }
    Broker broker(store, args->listen, artifacts, policy, curve);
    if (!args->trace.empty()) broker.trace_to(args->trace);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("coordinator: store %s, artifacts %s, listening on %s (%s)\n", args->db.c_str(),
                artifacts.string().c_str(), broker.endpoint().c_str(),
                curve ? ("CURVE, " + std::to_string(curve->worker_keys.size()) + " worker keys").c_str()
                      : "no CURVE: keep it on loopback");
    std::fflush(stdout);
    broker.serve(g_stop);
    std::printf("coordinator: stopped\n");
  });
}

}  // namespace tallrec

namespace tallrec {

void add_worker_command(CLI::App& app) {
  auto o = std::make_shared<AgentOptions>();
  auto* w = app.add_subcommand("worker", "Take runs from a coordinator, train them with tallrec-train, report back (TRP/1)");
  w->add_option("--coordinator", o->coordinator, "Coordinator endpoint, e.g. tcp://127.0.0.1:5555")->required();
  w->add_option("--id", o->id, "Worker id (default: HOST-PID)");
  w->add_option("--work-dir", o->work_dir, "Token cache and run folders")->default_str("out/worker");
  w->add_flag("--exit-when-idle", o->exit_when_idle, "Exit when the coordinator has no queued run");
  w->add_option("--threads", o->threads, "CPU threads per trainer (0: all cores)");
  auto gpus = std::make_shared<std::string>("auto");
  w->add_option("--gpus", *gpus, "GPUs to offer: auto (nvidia-smi), none, or indices like 0,1")->capture_default_str();
  w->add_option("--slots", o->slots, "Attempts run at once; the GPUs are split evenly between them")->capture_default_str();
  auto keys = std::make_shared<std::pair<std::string, std::string>>();
  w->add_option("--curve-key", keys->first, "CURVE: this worker's key file (tallrec keys NAME)");
  w->add_option("--coordinator-key", keys->second, "CURVE: the coordinator's public key file (coordinator.pub)");
  w->add_option("--give-up-after", o->give_up_after, "Exit 1 after this many seconds without a word from the coordinator (0: never)");
  w->add_option("--cancel-grace", o->cancel_grace_seconds, "Seconds between SIGTERM and SIGKILL when an attempt is cancelled")
      ->capture_default_str();
  w->callback([o, keys, gpus] {
    o->gpus = select_gpus(*gpus);
    split_slots(o->gpus, o->slots);  // checks that the slots divide the GPUs
    if (keys->first.empty() != keys->second.empty())
      throw InputError("worker: --curve-key and --coordinator-key go together");
    if (!keys->first.empty())
      o->curve = CurveClient{read_curve_key_pair(keys->first), read_curve_public_key(keys->second)};
    if (o->work_dir.empty()) o->work_dir = "out/worker";
    if (o->id.empty()) {
      char host[256] = "host";
      ::gethostname(host, sizeof host);
      o->id = std::string(host) + "-" + std::to_string(::getpid());
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const int code = run_agent(*o, g_stop);
    if (code != 0) throw Error("worker " + o->id + ": the coordinator at " + o->coordinator + " stayed silent");
  });
}

}  // namespace tallrec
