// The one exit-code policy of both binaries: parse and run a CLI11 app, map what escapes to
//   0 success, 1 failure (I/O, network, internal), 2 bad input or usage.
#pragma once

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/error.h"

namespace tallrec {

inline int run_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tallrec
