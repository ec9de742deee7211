// `tallrec coordinator` (coordinator/coordinator_service.h: store, TRP/1 broker, HTTP API) and
// `tallrec worker` (the agent), each serving until SIGINT or SIGTERM.
#include <atomic>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/stop_signals.h"
#include "common/curve_keys.h"
#include "common/error.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/slurm.h"
#include "worker/agent.h"
#include "worker/gpus.h"
#include "worker/trainer_process.h"

#include <unistd.h>

namespace tallrec {
namespace {

// The host part of "tcp://HOST:PORT" (--listen) or "HOST:PORT" (--http), brackets kept off.
std::string endpoint_host(std::string endpoint) {
  if (const size_t scheme = endpoint.find("://"); scheme != std::string::npos)
    endpoint = endpoint.substr(scheme + 3);
  if (!endpoint.empty() && endpoint.front() == '[') {
    const size_t close = endpoint.find(']');
    return endpoint.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  const size_t colon = endpoint.rfind(':');
  return colon == std::string::npos ? endpoint : endpoint.substr(0, colon);
}

}  // namespace

bool only_this_host(const std::string& address) {
  if (address.rfind("ipc://", 0) == 0 || address.rfind("inproc://", 0) == 0) return true;
  const std::string host = endpoint_host(address);
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

void add_coordinator_command(CLI::App& app) {
  struct Args {
    CoordinatorOptions o;
    std::string curve_key, worker_keys;
    SlurmPoolOptions pool;
    bool allow_insecure_listen = false;
  };
  auto a = std::make_shared<Args>();
  CoordinatorOptions& o = a->o;
  o.db = default_store_path();
  auto* c = app.add_subcommand(
      "coordinator",
      "Serve the store to workers over ZeroMQ (TRP/1, docs/dev/protocol.md) and the HTTP API and "
      "dashboard, until Ctrl-C");
  c->add_option("--db", o.db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  c->add_option("--listen", o.listen, "ZeroMQ endpoint to bind (127.0.0.1 unless told otherwise)")
      ->capture_default_str();
  c->add_option("--artifacts", o.artifacts,
                "Folder for stored checkpoints (default: artifacts/ next to the store)");
  c->add_option("--curve-key", a->curve_key,
                "CURVE: the coordinator's key file (tallrec keys coordinator)");
  c->add_option("--worker-keys", a->worker_keys,
                "CURVE: folder of the .pub keys of the workers let in");
  c->add_flag("--allow-insecure-listen", a->allow_insecure_listen,
              "Listen off loopback without CURVE (--listen) or without TLS (--http), on purpose: "
              "anyone who reaches the port can take runs, or read the token off the wire");
  c->add_option("--trace", o.trace,
                "Append every TRP/1 message in and out to this file (JSON lines)");
  c->add_option("--lease-seconds", o.policy.lease_seconds,
                "How long a worker's silence is tolerated")
      ->capture_default_str();
  c->add_option("--backoff-seconds", o.policy.backoff_base,
                "Wait before a failed run's next attempt (doubles per attempt, up to 300 s)")
      ->capture_default_str();
  c->add_option("--http", o.http,
                "ADDRESS:PORT of the HTTP API and dashboard (port 0: any free one), or off")
      ->capture_default_str();
  c->add_option(
      "--token-file", o.token_file,
      "The API token for changes (made at the first start; default: api-token next to the store)");
  c->add_flag("--read-token", o.reads_need_token,
              "Reads need the token too (by default they are open)");
  c->add_option("--web-root", o.web_root, "The dashboard's static files")->capture_default_str();
  c->add_option("--chart-js", o.chart_js,
                "Chart.js served as /vendor/chart.js (Debian: libjs-chart.js)")
      ->capture_default_str();
  auto* pool = c->add_option_group("Elastic Slurm pool",
                                   "Worker jobs submitted and cancelled to follow the queue "
                                   "(docs/cluster.md); the Slurm job options as `slurm submit`");
  pool->add_option("--slurm-pool", a->pool.max_workers,
                   "Keep up to MAX worker tasks pending or running while runs wait")
      ->check(CLI::PositiveNumber);
  pool->add_option("--slurm-connect", a->pool.job.coordinator,
                   "The address the workers connect to (default: --listen, with 0.0.0.0 or * "
                   "replaced by this host's name)");
  pool->add_option("--slurm-interval", a->pool.interval_seconds,
                   "Seconds between looks at the queue and Slurm")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  pool->add_option("--slurm-idle", a->pool.idle_seconds,
                   "Seconds the queue must stay empty before pending workers are cancelled")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_slurm_job_options(*pool, a->pool.job, /*in_coordinator=*/true);
  c->add_option("--max-preemptions", o.policy.max_preemptions,
                "A run preempted more often than this fails, saying so (preemptions spend no "
                "attempt)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->callback([a, pool] {
    if (a->pool.max_workers == 0 && pool->count_all() > 0)
      throw InputError("coordinator: the Slurm job options go with --slurm-pool MAX");
    if (a->pool.max_workers > 0) {
      complete_slurm_job(a->pool.job);
      a->o.slurm_pool = a->pool;
    }
    if (a->curve_key.empty() != a->worker_keys.empty())
      throw InputError("coordinator: --curve-key and --worker-keys go together");
    // Safe by default: off loopback, workers must prove who they are (CURVE), and the HTTP API,
    // which has no TLS of its own, stays behind a proxy or an ssh tunnel on this host.
    if (!a->allow_insecure_listen) {
      if (a->curve_key.empty() && !only_this_host(a->o.listen))
        throw InputError("coordinator: --listen " + a->o.listen +
                         " is reachable from other hosts and CURVE is off: give --curve-key and "
                         "--worker-keys (docs/admin.md), or --allow-insecure-listen on purpose");
      if (a->o.http != "off" && !only_this_host(a->o.http))
        throw InputError("coordinator: --http " + a->o.http +
                         " is reachable from other hosts and tallrec's HTTP has no TLS: keep it "
                         "on 127.0.0.1 behind a TLS proxy or `ssh -L` (docs/admin.md), or "
                         "--allow-insecure-listen on purpose");
    }
    if (!a->curve_key.empty()) {
      const CurveKeyPair own = read_curve_key_pair(a->curve_key);
      a->o.curve =
          CurveServer{own.public_key, own.secret_key, read_curve_public_keys(a->worker_keys)};
    }
    CoordinatorService service(a->o);
    const std::atomic<bool>& stop = stop_on_signals();
    const auto& o = service.options();
    std::printf(
        "coordinator: store %s, artifacts %s, listening on %s (%s)\n", o.db.c_str(),
        o.artifacts.c_str(), service.zmq_endpoint().c_str(),
        o.curve ? ("CURVE, " + std::to_string(o.curve->worker_keys.size()) + " worker keys").c_str()
                : "no CURVE");
    if (!service.http_url().empty()) {
      std::printf("coordinator: dashboard and API at %s\n", service.http_url().c_str());
      if (service.api_token_created())
        std::printf("coordinator: API token (shown once; kept in %s, mode 0600): %s\n",
                    o.token_file.c_str(), service.api_token().c_str());
      else
        std::printf("coordinator: API token in %s\n", o.token_file.c_str());
    }
    std::fflush(stdout);
    service.serve(stop);
    std::printf("coordinator: stopped\n");
  });
}

}  // namespace tallrec

namespace tallrec {

void add_worker_command(CLI::App& app) {
  auto o = std::make_shared<AgentOptions>();
  auto* w = app.add_subcommand(
      "worker", "Take runs from a coordinator, train them with tallrec-train, report back (TRP/1)");
  w->add_option("--coordinator", o->coordinator, "Coordinator endpoint, e.g. tcp://127.0.0.1:5555")
      ->required();
  w->add_option("--id", o->id, "Worker id (default: HOST-PID)");
  w->add_option("--work-dir", o->work_dir, "Token cache and run folders")
      ->default_str("out/worker");
  w->add_flag("--exit-when-idle", o->exit_when_idle, "Exit when the coordinator has no queued run");
  w->add_option("--threads", o->threads, "CPU threads per trainer (0: all cores)");
  auto gpus = std::make_shared<std::string>("auto");
  w->add_option("--gpus", *gpus, "GPUs to offer: auto (nvidia-smi), none, or indices like 0,1")
      ->capture_default_str();
  w->add_option("--slots", o->slots, "Attempts run at once; the GPUs are split evenly between them")
      ->capture_default_str();
  auto keys = std::make_shared<std::pair<std::string, std::string>>();
  w->add_option("--curve-key", keys->first, "CURVE: this worker's key file (tallrec keys NAME)");
  w->add_option("--coordinator-key", keys->second,
                "CURVE: the coordinator's public key file (coordinator.pub)");
  w->add_option("--give-up-after", o->give_up_after,
                "Exit 1 after this many seconds without a word from the coordinator (0: never)");
  w->add_option("--cancel-grace", o->cancel_grace_seconds,
                "Seconds between SIGTERM and SIGKILL when an attempt is cancelled")
      ->capture_default_str();
  w->add_option("--memory-limit-gib", o->memory_limit_gib,
                "Cap each trainer's memory (CUDA: the allocator's fraction; CPU: a ceiling on "
                "libtorch's CPU allocator); an out-of-memory is retried with half the "
                "micro-batch (0: no cap)")
      ->check(CLI::NonNegativeNumber);
  w->add_option("--stop-grace", o->stop_grace_seconds,
                "On SIGTERM or SIGUSR1 (Slurm preemption, requeue, time-limit warning): seconds a "
                "trainer has to checkpoint and its upload to finish; keep it below KillWait")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  w->callback([o, keys, gpus] {
    find_trainer();  // fails now, naming where it looked, rather than at the first attempt
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
    // SIGUSR1 too: Slurm's warning before the time limit (`--signal=B:USR1@90`).
    const int code = run_agent(*o, stop_on_signals(/*also_sigusr1=*/true), &stop_signal());
    if (code != 0)
      throw Error("worker " + o->id + ": the coordinator at " + o->coordinator + " stayed silent");
  });
}

}  // namespace tallrec
