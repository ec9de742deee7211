// `tallrec check GRID`: the pre-flight of cli/preflight.h, as a table of every finding (a missing
// path is one FAIL line among the rest); exit 0 when every check passes and every run's memory
// estimate fits the card, else 2.
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/preflight.h"
#include "coordinator/grid.h"

namespace tallrec {

void add_check_command(CLI::App& app) {
  struct Args {
    std::string grid, gpu_memory = "24GiB";
    bool no_datasets = false;
  };
  auto a = std::make_shared<Args>();
  auto* check = app.add_subcommand(
      "check",
      "Pre-flight a grid: models, adapters, tokenizers and datasets from their headers, "
      "and each run's GPU memory estimate");
  check->add_option("grid", a->grid, "Grid document (schemas/grid.schema.json)")->required();
  check->add_option("--gpu-memory", a->gpu_memory, "The card to fit (e.g. 24GiB, 80GB)")
      ->capture_default_str();
  check->add_flag("--no-datasets", a->no_datasets, "Skip reading the dataset files (their labels)");
  check->callback([a] {
    const Grid grid = parse_grid_file(a->grid);
    PreflightOptions o;
    o.datasets = !a->no_datasets;
    o.gpu_memory_bytes = parse_memory_size(a->gpu_memory);
    const auto lines = preflight(grid, o);
    std::cout << format_preflight(lines);
    const bool ok = preflight_ok(lines);
    std::cout << grid.name << ": " << grid.runs.size() << " runs, "
              << (ok ? "ready to submit" : "not ready") << "\n";
    if (!ok) {
      const auto failed =
          std::count_if(lines.begin(), lines.end(), [](const PreflightLine& l) { return !l.ok; });
      throw InputError(a->grid + ": " + std::to_string(failed) +
                       " problem(s) (the FAIL lines above)");
    }
  });
}

}  // namespace tallrec
