// `tallrec submit | status | runs | results`: sweeps in the coordinator's SQLite store. The CLI
// opens the store file itself (WAL: it never blocks the running coordinator).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/preflight.h"
#include "common/atomic_file.h"
#include "common/json_text.h"
#include "common/spec_enums.h"
#include "coordinator/grid.h"
#include "coordinator/results.h"
#include "coordinator/store.h"

namespace tallrec {
namespace {

std::string progress_bar(const SweepStatus& s, int width = 30) {
  int64_t done = 0;
  for (RunState state : kAllRunStates)
    if (!is_unfinished(state)) done += s.runs_by_state.at(state);
  const int64_t total = s.total();
  const int filled = total ? int(width * done / total) : 0;
  return "[" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.') + "]";
}

// A run's value in a named column: a spec field (an axis), or val_auc, test_auc:NAME, steps,
// attempts, state, id. Null when the run has none (not finished).
nlohmann::json run_column(const RunRow& r, const std::string& key) {
  if (key == "id") return r.id;
  if (key == "state") return run_state_name(r.state);
  if (key == "attempts") return r.attempts;
  if (key == "val_auc")
    return r.result.is_object() ? r.result.value("best_val_auc", nlohmann::json())
                                : nlohmann::json();
  if (key == "steps")
    return r.result.is_object() ? r.result.value("steps", nlohmann::json()) : nlohmann::json();
  if (key.rfind("test_auc:", 0) == 0) {
    if (!r.result.is_object() || !r.result.contains("test_auc")) return nullptr;
    return r.result["test_auc"].value(key.substr(9), nlohmann::json());
  }
  // An LLM run names no method (coordinator/grid.h): say it.
  if (key == EnumNames<Method>::field)
    return r.spec.value(key, nlohmann::json(name_of(Method::kLlm)));
  return r.spec.value(key, nlohmann::json());
}

std::string run_column_text(const RunRow& r, const std::string& key) {
  const nlohmann::json v = run_column(r, key);
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float() && (key == "val_auc" || key.rfind("test_auc:", 0) == 0)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
    return buf;
  }
  return v.dump();
}

}  // namespace

void require_sweep(Store& store, const std::string& name) {
  if (store.views.sweep_document(name)) return;
  throw InputError("no sweep named \"" + name + "\" in the store");
}

void add_sweep_commands(CLI::App& app) {
  auto db = std::make_shared<std::string>(default_store_path());
  auto json_out = std::make_shared<bool>(false);

  auto grid_path = std::make_shared<std::string>();
  auto* submit = app.add_subcommand(
      "submit", "Add a grid's sweep and its runs to the store (only what is new)");
  submit->add_option("grid", *grid_path, "Grid document (schemas/grid.schema.json)")->required();
  submit->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  submit->add_flag("--json", *json_out, "Print the result as JSON");
  auto no_check_paths = std::make_shared<bool>(false);
  submit->add_flag("--no-check-paths", *no_check_paths,
                   "Do not require the grid's files to exist here (paths only the workers see); "
                   "relative paths are still resolved against the grid file");
  submit->callback([=] {
    Grid grid = parse_grid_file(*grid_path);
    if (!*no_check_paths) {  // the cheap part of `tallrec check`: every path exists, and the
                             // headers of models, adapters and tokenizers
      PreflightOptions cheap;
      cheap.datasets = cheap.memory = false;
      cheap.missing_hint = "(--no-check-paths if only the workers see it)";
      const auto lines = preflight(grid, cheap);
      if (!preflight_ok(lines)) {
        for (const auto& l : lines)
          if (!l.ok) std::cerr << format_preflight({l});
        throw InputError(*grid_path + ": nothing submitted: the FAIL lines above (`tallrec check " +
                         *grid_path + "` also reads the datasets and estimates memory)");
      }
    }
    Store store(*db);
    SubmitResult r = store.queue.submit(grid);
    if (*json_out) {
      std::cout << nlohmann::json{{"sweep_id", r.sweep_id},
                                  {"sweep", grid.name},
                                  {"new_sweep", r.new_sweep},
                                  {"runs_added", r.added},
                                  {"runs_existing", r.existing}}
                       .dump()
                << "\n";
    } else {
      std::printf("sweep %s (%lld)%s: %zu runs added, %zu already stored\n", grid.name.c_str(),
                  static_cast<long long>(r.sweep_id), r.new_sweep ? " created" : "", r.added,
                  r.existing);
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
    for (const auto& s : store.views.status()) {
      if (!sweep_name->empty() && s.name != *sweep_name) continue;
      if (*json_out) {
        out.push_back(sweep_status_json(s));
        continue;
      }
      std::printf("%-24s %s %lld runs:", s.name.c_str(), progress_bar(s).c_str(),
                  static_cast<long long>(s.total()));
      for (const auto& [state, n] : s.runs_by_state)
        if (n) std::printf(" %s %lld", run_state_name(state), static_cast<long long>(n));
      int64_t open = 0;
      for (RunState state : kAllRunStates)
        if (is_unfinished(state)) open += s.runs_by_state.at(state);
      if (open && s.eta_seconds >= 0) std::printf("; ETA about %.0f min", s.eta_seconds / 60);
      std::printf("\n");
    }
    if (*json_out) std::cout << out.dump() << "\n";
  });

  auto results_sweep = std::make_shared<std::string>();
  auto tallrec_layout = std::make_shared<bool>(false);
  auto* results =
      app.add_subcommand("results", "TALLRec's Table 1 for a sweep: AUC mean +- std over seeds");
  results->add_option("sweep", *results_sweep, "Sweep name")->required();
  results->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  results->add_flag("--tallrec-json", *tallrec_layout,
                    "Print TALLRec's results JSON layout instead");
  results->add_flag("--json", *json_out,
                    "Print the table as JSON (rows with their setting, cells with n, mean, std)");
  auto export_format = std::make_shared<std::string>();
  results->add_option(
      "--format", *export_format,
      "Export in TALLRec's Table 1 layout (AUC x 100, mean ± std): csv, markdown or latex");
  results->callback([=] {
    require_existing_store(*db);
    Store store(*db);
    require_sweep(store, *results_sweep);
    ResultsTable table = build_results_table(store.views.run_outcomes(*results_sweep));
    if (!export_format->empty())
      std::cout << export_results_table(table, *export_format);
    else if (*tallrec_layout)
      std::cout << table.tallrec_json.dump(4) << "\n";
    else if (*json_out)
      std::cout << results_table_json(table).dump() << "\n";
    else
      std::cout << format_results_table(table);
  });

  struct RunsArgs {
    std::string sweep, state, sort;
    std::vector<std::string> where;
    int64_t limit = 50, offset = 0;
  };
  auto args = std::make_shared<RunsArgs>();
  auto* runs = app.add_subcommand(
      "runs", "List runs (paged) with the axes that differ in their sweep and their results");
  runs->add_option("--sweep", args->sweep,
                   "Sweep name (its differing axes become columns; --where and --sort need it)");
  runs->add_option("--state", args->state,
                   "queued, leased, running, succeeded, failed or canceled");
  runs->add_option("--where", args->where,
                   "AXIS=VALUE, e.g. lr=0.0003 or domain=movie (repeatable: all must hold)");
  runs->add_option(
      "--sort", args->sort,
      "A column to sort by: an axis, val_auc, test_auc:NAME, steps, attempts, id; -KEY descends");
  runs->add_option("--limit", args->limit, "Rows per page")->capture_default_str();
  runs->add_option("--offset", args->offset, "Rows to skip")->capture_default_str();
  runs->add_option("--db", *db, "Store file (default $TALLREC_DB or ./tallrec.db)");
  runs->add_flag("--json", *json_out, "Print JSON");
  runs->callback([=] {
    require_existing_store(*db);
    Store store(*db);
    if (!args->sweep.empty()) require_sweep(store, args->sweep);
    const std::optional<RunState> state = parse_run_state(args->state);
    if (!args->state.empty() && !state)
      throw InputError("--state \"" + args->state + "\": expected " + run_state_names());
    if (args->sweep.empty() && (!args->where.empty() || !args->sort.empty()))
      throw InputError("--where and --sort need --sweep");
    std::vector<RunRow> rows;
    std::vector<std::string> axes, tests;
    if (args->sweep.empty()) {
      rows = store.views.runs("", state, args->limit, args->offset);
    } else {
      // The whole sweep: its differing axes, then filter, sort and page here (10,000 runs is fine).
      std::vector<RunRow> all = store.views.runs(args->sweep);
      std::vector<nlohmann::json> specs;
      for (const auto& r : all) specs.push_back(r.spec);
      if (!specs.empty()) axes = sweep_setting_fields(specs);
      for (const auto& r : all) {
        const nlohmann::json run_tests =
            r.spec.value("tests", nlohmann::json::object());  // named: items() must not outlive it
        for (auto& [name, path] : run_tests.items())
          if (std::find(tests.begin(), tests.end(), name) == tests.end()) tests.push_back(name);
      }
      std::vector<std::pair<std::string, std::string>> conditions;
      for (const auto& w : args->where) {
        const size_t eq = w.find('=');
        if (eq == std::string::npos || eq == 0)
          throw InputError("--where \"" + w + "\": expected AXIS=VALUE");
        conditions.push_back({w.substr(0, eq), w.substr(eq + 1)});
      }
      for (auto& r : all) {
        if (state && r.state != *state) continue;
        bool keep = true;
        for (const auto& [axis, value] : conditions)
          keep = keep && run_column_text(r, axis) == value;
        if (keep) rows.push_back(std::move(r));
      }
      if (!args->sort.empty()) {
        const bool descending = args->sort[0] == '-';
        const std::string key = descending ? args->sort.substr(1) : args->sort;
        std::stable_sort(rows.begin(), rows.end(), [&](const RunRow& x, const RunRow& y) {
          const nlohmann::json a = run_column(x, key), b = run_column(y, key);
          if (a.is_null() != b.is_null()) return b.is_null();  // runs without the value last
          return descending ? b < a : a < b;
        });
      }
      const size_t from = std::min(rows.size(), size_t(std::max<int64_t>(args->offset, 0)));
      const size_t to =
          args->limit < 0 ? rows.size() : std::min(rows.size(), from + size_t(args->limit));
      rows = std::vector<RunRow>(rows.begin() + std::ptrdiff_t(from),
                                 rows.begin() + std::ptrdiff_t(to));
    }
    if (*json_out) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : rows) out.push_back(run_row_json(r));
      std::cout << dump_json(out) << "\n";
      return;
    }
    std::printf("%6s  %-9s %-6s %6s %6s", "run", "state", "domain", "sample", "seed");
    for (const auto& a : axes) std::printf("  %-12s", a.c_str());
    std::printf("  %-8s", "val AUC");
    for (const auto& t : tests) std::printf("  %-10s", ("test " + t).c_str());
    std::printf("  %5s  %8s  %s\n", "steps", "attempts", "notes");
    for (const auto& r : rows) {
      std::printf("%6lld  %-9s %-6s %6lld %6llu", static_cast<long long>(r.id),
                  run_state_name(r.state), r.domain.c_str(), static_cast<long long>(r.sample),
                  static_cast<unsigned long long>(r.seed));
      for (const auto& a : axes) std::printf("  %-12s", run_column_text(r, a).c_str());
      std::printf("  %-8s", run_column_text(r, "val_auc").c_str());
      for (const auto& t : tests)
        std::printf("  %-10s", run_column_text(r, "test_auc:" + t).c_str());
      // Why it failed, and what the queue changed on the way (tallrec runs --json has them too).
      std::string notes = is_retryable(r.state) ? printable_utf8(r.reason) : std::string();
      if (r.micro_batch_size > 0)
        notes += (notes.empty() ? "" : "; ") + std::string("micro-batch ") +
                 std::to_string(r.micro_batch_size) + " after out-of-memory";
      if (r.preemptions > 0)
        notes += (notes.empty() ? "" : "; ") + std::string("preempted ") +
                 std::to_string(r.preemptions) + "x";
      std::printf("  %5s  %8lld  %s\n", run_column_text(r, "steps").c_str(),
                  static_cast<long long>(r.attempts), notes.c_str());
    }
  });
}

}  // namespace tallrec
