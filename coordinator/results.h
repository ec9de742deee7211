// TALLRec's Table 1 from a sweep's runs (docs/dev/design.md, "Results"). A cell holds the runs that
// differ only in seed: train domain -> test domain x sample count, within one *setting*, the
// rest of the run's spec (method, hyper-parameters, base model, adapter, recipe, ...). Settings
// are labelled by the fields that differ between the sweep's settings ("lr=0.0003"), "" when
// there is one; when the methods differ (coordinator/grid.h), the label starts with the method as
// the paper's Table 1 names it (display_name() in common/spec_enums.h: "SASRec", "TALLRec,
// lr=0.0003"). Rows and sample columns come from the runs themselves, not from a grid. Std is the
// sample standard deviation (ddof = 1, as pandas and most papers), undefined for one run.
// Also TALLRec's results JSON layout {train: {test: {model: {seed: {sample: auc}}}}} (its
// evaluate.py's result.json), where "model" is the base model's folder name (a baseline's: its
// method's name, "SASRec") plus the setting's other fields.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "coordinator/store.h"

namespace tallrec {

struct TableCell {
  int64_t runs = 0, finished = 0;  // runs of this grid point, and how many have ended
  std::vector<double> aucs;        // test AUC of each succeeded run
  double mean() const;             // NaN when no run succeeded
  double std() const;              // sample std (ddof 1); NaN below two runs
};

struct TableRow {
  std::string setting;                               // "" when the sweep has one setting
  nlohmann::json values = nlohmann::json::object();  // the setting's value of each setting field
                                                     // (method: "llm" for the LLM's runs)
  std::string train, test;
  std::vector<TableCell> cells;  // one per ResultsTable::samples
};

struct ResultsTable {
  std::vector<std::string> setting_fields;  // the spec fields whose values differ between settings
  std::vector<int64_t> samples;             // ascending
  // In order of first appearance among the runs; when the methods differ, the LLM's rows first,
  // then each baseline's in Method's order (each method's rows in order of first appearance).
  std::vector<TableRow> rows;
  nlohmann::json tallrec_json;
};

// The spec fields that make a run's setting: everything but domain, sample, seed and the
// per-domain data paths.
nlohmann::json run_setting(const nlohmann::json& spec);

// The setting fields whose values differ between these runs' specs (sorted by name).
std::vector<std::string> differing_setting_fields(const std::vector<nlohmann::json>& specs);

// The fields that tell a sweep's settings apart (sorted by name): those that differ between the
// settings of one method (a baseline's spec has none of the LLM's fields, which is no
// difference), and "method" when the runs' methods differ. ResultsTable::setting_fields.
std::vector<std::string> sweep_setting_fields(const std::vector<nlohmann::json>& specs);
// Those fields per method, by the method's Table 1 name.
std::map<std::string, std::set<std::string>> differing_by_method(
    const std::vector<nlohmann::json>& specs);

ResultsTable build_results_table(const std::vector<RunOutcome>& runs);
// Plain text: one line per row, "mean +- std (n=K)" per cell.
std::string format_results_table(const ResultsTable& table);
// TALLRec's Table 1 layout for a paper: one row per setting x train domain, column groups per
// test domain x sample count, AUC x 100 as "mean ± std" (one decimal; mean alone for one run).
// `format`: "csv", "markdown" or "latex"; InputError for another.
std::string export_results_table(const ResultsTable& table, const std::string& format);
// The same table as JSON (the CLI's --json, the API's heatmap): rows [{setting, train, test}],
// samples, cells [[{runs, finished, succeeded, mean, std}]] (null where undefined); each row also
// has `values`, its setting as {field: value}, for charts against an axis.
nlohmann::json results_table_json(const ResultsTable& table);

}  // namespace tallrec
