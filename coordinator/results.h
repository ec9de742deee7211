// TALLRec's Table 1 from a sweep's finished runs: AUC mean and population std over seeds per
// train domain x test domain x sample count, and TALLRec's results JSON layout
// {train_domain: {test_domain: {model: {seed: {sample: auc}}}}} (evaluate.py's result.json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tallrec {

struct TableCell {
  double mean = 0, std = 0;
  int runs = 0;
};

struct ResultsTable {
  // rows: "train -> test"; columns: sample counts (ascending)
  std::vector<std::string> rows;
  std::vector<int64_t> samples;
  std::vector<std::vector<TableCell>> cells;  // [row][column], runs == 0 when empty
  nlohmann::json tallrec_json;
};

// `runs`: (resolved run spec, finished event) pairs; the event's test_auc maps test domain -> AUC.
ResultsTable build_results_table(const std::vector<std::pair<nlohmann::json, nlohmann::json>>& runs);
std::string format_results_table(const ResultsTable& table);

}  // namespace tallrec
