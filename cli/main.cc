// `tallrec`: every user-facing subcommand. Never links libtorch (see docs/dev/design.md).
// Exit codes: 0 success, 1 failure (I/O, network, internal), 2 bad input or usage.
#include "cli/commands.h"
#include "common/cli_main.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"tallrec: TALLRec-style LoRA rec-tuning sweeps (data, demo grid, sweep store)"};
  app.set_version_flag("--version", std::string(tallrec::kVersion));
  app.require_subcommand(1);
  tallrec::add_data_commands(app);
  tallrec::add_demo_command(app);
  tallrec::add_sweep_commands(app);
  tallrec::add_check_command(app);
  tallrec::add_run_commands(app);
  tallrec::add_keys_command(app);
  tallrec::add_coordinator_command(app);
  tallrec::add_worker_command(app);
  tallrec::add_slurm_commands(app);
  return tallrec::run_cli(app, argc, argv);
}
