// `tallrec coordinator`: the store plus the TRP/1 broker, serving until SIGINT or SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "coordinator/broker.h"
#include "coordinator/store.h"

namespace tallrec {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }
}  // namespace

void add_coordinator_command(CLI::App& app) {
  struct Args { std::string db = "tallrec.db", listen = "tcp://127.0.0.1:5555"; double lease_seconds = 30; };
  auto args = std::make_shared<Args>();
  auto* c = app.add_subcommand("coordinator", "Serve the store to workers over ZeroMQ (TRP/1, docs/protocol.md) until Ctrl-C");
  c->add_option("--db", args->db, "Store file")->capture_default_str();
  c->add_option("--listen", args->listen, "ZeroMQ endpoint to bind (127.0.0.1 unless told otherwise)")->capture_default_str();
  c->add_option("--lease-seconds", args->lease_seconds, "How long a worker's silence is tolerated")->capture_default_str();
  c->callback([args] {
    Store store(args->db);
    RetryPolicy policy;
    policy.lease_seconds = args->lease_seconds;
    Broker broker(store, args->listen, policy);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("coordinator: store %s, listening on %s (no CURVE yet: bind to loopback only)\n", args->db.c_str(),
                broker.endpoint().c_str());
    std::fflush(stdout);
    broker.serve(g_stop);
    std::printf("coordinator: stopped\n");
  });
}

}  // namespace tallrec
