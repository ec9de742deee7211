// The worker agent (`tallrec worker`): a ZeroMQ DEALER speaking TRP/1 (docs/protocol.md) to the
// coordinator. Per lease: prepare the data (worker/prepare_run.h), spawn tallrec-train, relay
// each JSON line of its stdout as an EVENT (kept until ACKed), heartbeat, report DONE.
// One slot. Not yet: reconnect after a coordinator restart, CURVE, checkpoint upload, CANCEL.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>

namespace tallrec {

struct AgentOptions {
  std::string coordinator;        // tcp://host:port
  std::string id;                 // routing id (default: host-pid)
  std::filesystem::path work_dir; // token cache and run folders
  bool exit_when_idle = false;    // return when the coordinator has no work (tests, batch use)
  int threads = 0;                // CPU threads per trainer (0: tallrec-train's default, all cores)
};

// Returns 0 when stopped or idle (with exit_when_idle), 1 on a lost coordinator.
int run_agent(const AgentOptions& options, const std::atomic<bool>& stop);

}  // namespace tallrec
