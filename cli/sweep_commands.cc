// `tallrec submit | status | runs | results`: sweeps in the coordinator's SQLite store. The CLI
// opens the store file itself (WAL: it never blocks the running coordinator).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/preflight.h"
#include "common/atomic_file.h"
#include "coordinator/grid.h"
#include "coordinator/results.h"
#include "coordinator/store.h"

namespace tallrec {
namespace {

std::string progress_bar(const SweepStatus& s, int width = 30) {
  const int64_t total = s.total(), done = s.runs_by_state.at("succeeded") + s.runs_by_state.at("failed") +
                                          s.runs_by_state.at("canceled");
  const int filled = total ? int(width * done / total) : 0;
  return "[" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.') + "]";
}

// An unknown sweep is bad input (exit 2), not an empty answer.
void require_sweep(Store& store, const std::string& name) {
  for (const auto& s : store.status())
    if (s.name == name) return;
  throw InputError("no sweep named \"" + name + "\" in the store");
}

}  // namespace

void add_sweep_commands(CLI::App& app) {
  auto db = std::make_shared<std::string>(default_store_path());
  auto json_out = std::make_shared<bool>(false);

  auto grid_path = std::make_shared<std::string>();
  auto* submit = app.add_subcommand("submit", "Add a grid's sweep and its runs to the store (only what is new)");
  submit->add_option("grid", *grid_path, "Grid document (schemas/grid.schema.json)")->required();
  submit->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  submit->add_flag("--json", *json_out, "Print the result as JSON");
  auto no_check_paths = std::make_shared<bool>(false);
  submit->add_flag("--no-check-paths", *no_check_paths,
                   "Do not require the grid's files to exist here (paths only the workers see); relative paths are still resolved against the grid file");
  submit->callback([=] {
    Grid grid = parse_grid_file(*grid_path, !*no_check_paths);
    if (!*no_check_paths) {  // the cheap part of `tallrec check`: headers of models, adapters, tokenizers
      PreflightOptions cheap;
      cheap.datasets = cheap.memory = false;
      const auto lines = preflight(grid, cheap);
      if (!preflight_ok(lines)) {
        std::cerr << format_preflight(lines);
        throw InputError(*grid_path + ": pre-flight found problems (FAIL lines above; `tallrec check` for all of it)");
      }
    }
    Store store(*db);
    SubmitResult r = store.submit(grid);
    if (*json_out) {
      std::cout << nlohmann::json{{"sweep_id", r.sweep_id}, {"sweep", grid.name}, {"new_sweep", r.new_sweep},
                                  {"runs_added", r.added}, {"runs_existing", r.existing}}.dump() << "\n";
    } else {
      std::printf("sweep %s (%lld)%s: %zu runs added, %zu already stored\n", grid.name.c_str(),
                  static_cast<long long>(r.sweep_id), r.new_sweep ? " created" : "", r.added, r.existing);
    }
  });

  auto sweep_name = std::make_shared<std::string>();
  auto* status = app.add_subcommand("status", "Progress of each sweep: runs per state");
  status->add_option("sweep", *sweep_name, "Only this sweep");
  status->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  status->add_flag("--json", *json_out, "Print JSON");
  status->callback([=] {
    require_existing_store(*db);
    Store store(*db);
    if (!sweep_name->empty()) require_sweep(store, *sweep_name);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : store.status()) {
      if (!sweep_name->empty() && s.name != *sweep_name) continue;
      if (*json_out) {
        out.push_back(sweep_status_json(s));
        continue;
      }
      std::printf("%-24s %s %lld runs:", s.name.c_str(), progress_bar(s).c_str(), static_cast<long long>(s.total()));
      for (const auto& [state, n] : s.runs_by_state)
        if (n) std::printf(" %s %lld", state.c_str(), static_cast<long long>(n));
      std::printf("\n");
    }
    if (*json_out) std::cout << out.dump() << "\n";
  });

  auto results_sweep = std::make_shared<std::string>();
  auto tallrec_layout = std::make_shared<bool>(false);
  auto* results = app.add_subcommand("results", "TALLRec's Table 1 for a sweep: AUC mean +- std over seeds");
  results->add_option("sweep", *results_sweep, "Sweep name")->required();
  results->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  results->add_flag("--tallrec-json", *tallrec_layout, "Print TALLRec's results JSON layout instead");
  results->add_flag("--json", *json_out, "Print the table as JSON (rows with their setting, cells with n, mean, std)");
  auto export_format = std::make_shared<std::string>();
  results->add_option("--format", *export_format, "Export in TALLRec's Table 1 layout (AUC x 100, mean ± std): csv, markdown or latex");
  results->callback([=] {
    require_existing_store(*db);
    Store store(*db);
    require_sweep(store, *results_sweep);
    ResultsTable table = build_results_table(store.run_outcomes(*results_sweep));
    if (!export_format->empty()) std::cout << export_results_table(table, *export_format);
    else if (*tallrec_layout) std::cout << table.tallrec_json.dump(4) << "\n";
    else if (*json_out) std::cout << results_table_json(table).dump() << "\n";
    else std::cout << format_results_table(table);
  });

  struct RunsArgs { std::string sweep, state; int64_t limit = 50, offset = 0; };
  auto args = std::make_shared<RunsArgs>();
  auto* runs = app.add_subcommand("runs", "List runs (paged), optionally of one sweep or state");
  runs->add_option("--sweep", args->sweep, "Sweep name");
  runs->add_option("--state", args->state, "queued, leased, running, succeeded, failed or canceled");
  runs->add_option("--limit", args->limit, "Rows per page")->capture_default_str();
  runs->add_option("--offset", args->offset, "Rows to skip")->capture_default_str();
  runs->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  runs->add_flag("--json", *json_out, "Print JSON");
  runs->callback([=] {
    require_existing_store(*db);
    Store store(*db);
    if (!args->sweep.empty()) require_sweep(store, args->sweep);
    static const char* states[] = {"queued", "leased", "running", "succeeded", "failed", "canceled"};
    if (!args->state.empty() && std::find(std::begin(states), std::end(states), args->state) == std::end(states))
      throw InputError("--state \"" + args->state + "\": expected queued, leased, running, succeeded, failed or canceled");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : store.runs(args->sweep, args->state, args->limit, args->offset)) {
      if (*json_out) {
        out.push_back(run_row_json(r));
      } else {
        std::printf("%6lld  %-9s %-6s sample %-5lld seed %-6llu attempts %lld  %.12s\n", static_cast<long long>(r.id),
                    r.state.c_str(), r.domain.c_str(), static_cast<long long>(r.sample),
                    static_cast<unsigned long long>(r.seed), static_cast<long long>(r.attempts), r.key.c_str());
      }
    }
    if (*json_out) std::cout << out.dump() << "\n";
  });
}

}  // namespace tallrec
