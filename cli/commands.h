// Each file under cli/ registers one family of subcommands on the `tallrec` app.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/error.h"

namespace tallrec {

// The store file the sweep and run commands open unless --db says otherwise.
inline std::string default_store_path() {
  const char* env = std::getenv("TALLREC_DB");
  return env ? env : "tallrec.db";
}

// The commands that read or change an existing store never create one: a mistyped --db is an
// InputError (exit 2) naming the file. Only `submit` and `coordinator` create stores.
inline void require_existing_store(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw InputError(path +
                     ": no such store (only `tallrec submit` and `tallrec coordinator` create one; "
                     "--db or $TALLREC_DB name it)");
}

struct Store;
// An unknown sweep is bad input (exit 2), not an empty answer.
void require_sweep(Store& store, const std::string& name);

// Whether only this host can reach a listening address, "tcp://HOST:PORT" (ZeroMQ) or
// "HOST:PORT" (HTTP): 127.0.0.0/8, ::1, localhost, or no network at all (ipc://, inproc://).
// 0.0.0.0, *, a host name or an interface can be reached from elsewhere.
bool only_this_host(const std::string& address);

void add_data_commands(CLI::App& app);        // data prepare | fetch | tokenize | subset
void add_demo_command(CLI::App& app);         // demo
void add_sweep_commands(CLI::App& app);       // submit | status | runs | results
void add_check_command(CLI::App& app);        // check
void add_run_commands(CLI::App& app);         // cancel | retry | workers
void add_keys_command(CLI::App& app);         // keys
void add_coordinator_command(CLI::App& app);  // coordinator
void add_worker_command(CLI::App& app);       // worker
void add_slurm_commands(CLI::App& app);       // slurm submit | status
// The Slurm job options (partition, time, GPUs, ...) `slurm submit` and `coordinator
// --slurm-pool` share, and what they leave to the machine (this binary, an absolute log folder).
struct SlurmWorkerJob;
void add_slurm_job_options(CLI::App& command, SlurmWorkerJob& job, bool in_coordinator);
void complete_slurm_job(SlurmWorkerJob& job);

}  // namespace tallrec
