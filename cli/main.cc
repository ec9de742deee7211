// `tallrec`: every user-facing subcommand. Never links libtorch (see DESIGN.md).
// Exit codes: 0 success, 1 failure (I/O, network, internal), 2 bad input or usage.
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"tallrec: TALLRec-style LoRA rec-tuning sweeps (data preparation, and more to come)"};
  app.set_version_flag("--version", std::string(tallrec::kVersion));
  app.require_subcommand(1);
  tallrec::add_data_commands(app);
  tallrec::add_demo_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const tallrec::InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
