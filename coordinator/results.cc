#include "coordinator/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace tallrec {

ResultsTable build_results_table(const std::vector<std::pair<nlohmann::json, nlohmann::json>>& runs) {
  std::map<std::string, std::map<int64_t, std::vector<double>>> aucs;  // row -> sample -> per seed
  std::set<int64_t> samples;
  ResultsTable t;
  t.tallrec_json = nlohmann::json::object();
  for (const auto& [spec, result] : runs) {
    const std::string train = spec.at("domain");
    const int64_t sample = spec.at("sample");
    const std::string model = spec.at("base_model").get<std::string>().substr(
        spec.at("base_model").get<std::string>().find_last_of('/') + 1);
    samples.insert(sample);
    for (const auto& [test, auc] : result.at("test_auc").items()) {
      aucs[train + " -> " + test][sample].push_back(auc.get<double>());
      t.tallrec_json[train][test][model][std::to_string(spec.at("seed").get<uint64_t>())][std::to_string(sample)] = auc;
    }
  }
  t.samples.assign(samples.begin(), samples.end());
  for (const auto& [row, by_sample] : aucs) {
    t.rows.push_back(row);
    std::vector<TableCell> cells;
    for (int64_t s : t.samples) {
      TableCell c;
      auto it = by_sample.find(s);
      if (it != by_sample.end()) {
        const auto& v = it->second;
        c.runs = int(v.size());
        for (double x : v) c.mean += x / double(v.size());
        for (double x : v) c.std += (x - c.mean) * (x - c.mean) / double(v.size());
        c.std = std::sqrt(c.std);
      }
      cells.push_back(c);
    }
    t.cells.push_back(cells);
  }
  return t;
}

std::string format_results_table(const ResultsTable& t) {
  std::string out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-18s", "train -> test");
  out += buf;
  for (int64_t s : t.samples) {
    std::snprintf(buf, sizeof buf, " %18s", ("sample " + std::to_string(s)).c_str());
    out += buf;
  }
  out += "\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    std::snprintf(buf, sizeof buf, "%-18s", t.rows[r].c_str());
    out += buf;
    for (const auto& c : t.cells[r]) {
      if (c.runs == 0) std::snprintf(buf, sizeof buf, " %18s", "-");
      else std::snprintf(buf, sizeof buf, "   %.4f +- %.4f", c.mean, c.std);
      out += buf;
    }
    out += "\n";
  }
  return out;
}

}  // namespace tallrec
