#include "coordinator/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/spec_enums.h"

namespace tallrec {
namespace {

using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

json number_or_null(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

// A run's method, as a grid writes it: none for the LLM (common/baseline_spec.h's spec_method;
// a name this build does not know, from a newer coordinator's store, is kept as it is).
constexpr const char* kMethodField = EnumNames<Method>::field;
std::optional<Method> method_of(const json& spec) {
  if (!spec.contains(kMethodField)) return Method::kLlm;
  if (!spec[kMethodField].is_string()) return std::nullopt;
  return enum_from_name<Method>(spec[kMethodField].get<std::string>());
}

// How Table 1 names a run's method: TALLRec, GRU4Rec, Caser, SASRec, DROS.
std::string method_label(const json& spec) {
  if (auto m = method_of(spec)) return display_name(*m);
  return value_text(spec[kMethodField]);
}

// Where a method's rows go, as in TALLRec's Table 1: the baselines in Method's order, then a
// method this build does not know, then the LLM (TALLRec's row is the table's last).
size_t method_rank(const json& spec) {
  const auto m = method_of(spec);
  if (m == Method::kLlm) return EnumNames<Method>::names.size() + 1;
  return m ? size_t(*m) : EnumNames<Method>::names.size();
}

}  // namespace

double TableCell::mean() const {
  if (aucs.empty()) return kNaN;
  double m = 0;
  for (double x : aucs) m += x / double(aucs.size());
  return m;
}

double TableCell::std() const {
  if (aucs.size() < 2) return kNaN;
  const double m = mean();
  double ss = 0;
  for (double x : aucs) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(aucs.size() - 1));
}

json run_setting(const json& spec) {
  json s = spec;
  for (const char* key : {"domain", "sample", "seed", "train", "valid", "tests"}) s.erase(key);
  return s;
}

std::vector<std::string> differing_setting_fields(const std::vector<json>& specs) {
  std::vector<json> settings;
  for (const auto& spec : specs) {
    json s = run_setting(spec);
    if (std::find(settings.begin(), settings.end(), s) == settings.end()) settings.push_back(s);
  }
  std::set<std::string> fields;
  for (const auto& s : settings)
    for (auto& [k, v] : s.items()) fields.insert(k);
  std::vector<std::string> out;
  for (const auto& f : fields) {
    const json first = settings.front().value(f, json());
    if (std::any_of(settings.begin(), settings.end(),
                    [&](const json& s) { return s.value(f, json()) != first; }))
      out.push_back(f);
  }
  return out;
}

std::map<std::string, std::set<std::string>> differing_by_method(const std::vector<json>& specs) {
  std::map<std::string, std::vector<json>> specs_of;  // method label -> its runs' specs
  for (const auto& spec : specs) specs_of[method_label(spec)].push_back(spec);
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [method, of_method] : specs_of) {
    std::set<std::string>& fields = out[method];
    for (const auto& f : differing_setting_fields(of_method)) fields.insert(f);
  }
  return out;
}

std::vector<std::string> sweep_setting_fields(const std::vector<json>& specs) {
  const auto by_method = differing_by_method(specs);
  std::set<std::string> fields;
  for (const auto& [method, differing] : by_method)
    fields.insert(differing.begin(), differing.end());
  if (by_method.size() > 1) fields.insert(kMethodField);
  return {fields.begin(), fields.end()};
}

ResultsTable build_results_table(const std::vector<RunOutcome>& runs) {
  ResultsTable t;
  t.tallrec_json = json::object();
  std::vector<json> specs;
  for (const auto& r : runs) specs.push_back(r.spec);
  std::map<std::string, std::set<std::string>> differing_of = differing_by_method(specs);
  t.setting_fields = sweep_setting_fields(specs);
  // The setting's label: the method as Table 1 names it when the runs' methods differ
  // ("SASRec", "TALLRec, lr=0.0003"), then each field that differs between that method's
  // settings as FIELD=VALUE. `others`: the label without the method.
  const bool by_method = differing_of.size() > 1;
  auto label_of = [&](const json& spec, std::string* others = nullptr) {
    const json s = run_setting(spec);
    const std::set<std::string>& differing = differing_of[method_label(spec)];
    std::string label, rest;
    for (const auto& f : t.setting_fields)
      if (f != kMethodField && differing.count(f))
        rest += (rest.empty() ? "" : ", ") + f + "=" + (s.contains(f) ? value_text(s[f]) : "-");
    if (by_method) label = method_label(spec);
    label += (label.empty() || rest.empty() ? "" : ", ") + rest;
    if (others) *others = rest;
    return label;
  };

  std::set<int64_t> samples;
  for (const auto& r : runs) samples.insert(r.sample);
  t.samples.assign(samples.begin(), samples.end());
  std::map<std::tuple<std::string, std::string, std::string>, size_t> row_of;
  for (const auto& r : runs) {
    std::string others;
    const std::string label = label_of(r.spec, &others);
    std::vector<std::string> tests;
    const json test_sets =
        r.spec.value("tests", json::object());  // named: items() must not outlive it
    for (auto& [name, path] : test_sets.items()) tests.push_back(name);
    if (tests.empty()) tests.push_back(r.domain);
    const size_t column =
        size_t(std::find(t.samples.begin(), t.samples.end(), r.sample) - t.samples.begin());
    const bool ended = !is_unfinished(r.state);
    // TALLRec's results JSON's "model": the base model's folder name for an LLM run, the method's
    // name for a baseline (which uses no base model), then the rest of the setting.
    const std::string base = r.spec.value("base_model", std::string());
    std::string model = method_of(r.spec) == Method::kLlm ? base.substr(base.find_last_of('/') + 1)
                                                          : method_label(r.spec);
    if (!others.empty()) model += " (" + others + ")";
    for (const auto& test : tests) {
      auto [it, added] = row_of.try_emplace({label, r.domain, test}, t.rows.size());
      if (added) {
        json values = json::object();
        const json s = run_setting(r.spec);
        for (const auto& f : t.setting_fields) values[f] = s.value(f, json());
        if (by_method)  // the LLM's runs name no method: say it
          values[kMethodField] = s.value(kMethodField, json(name_of(Method::kLlm)));
        t.rows.push_back({label, values, r.domain, test, std::vector<TableCell>(t.samples.size())});
      }
      TableCell& c = t.rows[it->second].cells[column];
      ++c.runs;
      c.finished += ended;
      if (r.state != RunState::kSucceeded || !r.result.contains("test_auc") ||
          !r.result["test_auc"].contains(test))
        continue;
      const double auc = r.result["test_auc"][test].get<double>();
      c.aucs.push_back(auc);
      t.tallrec_json[r.domain][test][model][std::to_string(r.seed)][std::to_string(r.sample)] = auc;
    }
  }
  // Table 1's order: each baseline's rows in Method's order, then the LLM's (stable: within a
  // method, rows stay in order of first appearance).
  if (by_method)
    std::stable_sort(t.rows.begin(), t.rows.end(), [](const TableRow& a, const TableRow& b) {
      return method_rank(a.values) < method_rank(b.values);
    });
  return t;
}

std::string format_results_table(const ResultsTable& t) {
  size_t setting_width = 0;
  for (const auto& r : t.rows) setting_width = std::max(setting_width, r.setting.size());
  std::string out;
  char buf[256];
  auto lead = [&](const std::string& setting, const std::string& row) {
    if (setting_width) {
      std::snprintf(buf, sizeof buf, "%-*s  ", int(setting_width), setting.c_str());
      out += buf;
    }
    std::snprintf(buf, sizeof buf, "%-18s", row.c_str());
    out += buf;
  };
  lead("setting", "train -> test");
  for (int64_t s : t.samples) {
    std::snprintf(buf, sizeof buf, " %24s", ("sample " + std::to_string(s)).c_str());
    out += buf;
  }
  out += "\n";
  for (const auto& r : t.rows) {
    lead(r.setting, r.train + " -> " + r.test);
    for (const auto& c : r.cells) {
      if (c.aucs.empty())
        std::snprintf(buf, sizeof buf, " %24s", c.runs ? "-" : "");
      else if (c.aucs.size() == 1)
        std::snprintf(buf, sizeof buf, " %13.4f        (n=1)", c.mean());
      else
        std::snprintf(buf, sizeof buf, "   %.4f +- %.4f (n=%zu)", c.mean(), c.std(), c.aucs.size());
      out += buf;
    }
    out += "\n";
  }
  out += "AUC mean +- sample std (ddof 1) over seeds; n = succeeded runs per cell\n";
  return out;
}

std::string export_results_table(const ResultsTable& t, const std::string& format) {
  if (format != "csv" && format != "markdown" && format != "latex")
    throw InputError("--format \"" + format + "\": expected csv, markdown or latex");
  // Rows: setting x train; columns: test x sample, in order of first appearance.
  std::vector<std::pair<std::string, std::string>> row_keys;
  std::vector<std::string> tests;
  for (const auto& r : t.rows) {
    if (std::find(row_keys.begin(), row_keys.end(), std::make_pair(r.setting, r.train)) ==
        row_keys.end())
      row_keys.push_back({r.setting, r.train});
    if (std::find(tests.begin(), tests.end(), r.test) == tests.end()) tests.push_back(r.test);
  }
  const bool csv = format == "csv", latex = format == "latex";
  auto cell_text = [&](const TableCell* c) -> std::string {
    if (!c || c->aucs.empty()) return csv ? "" : "-";
    char buf[64];
    if (c->aucs.size() == 1)
      std::snprintf(buf, sizeof buf, "%.1f", 100 * c->mean());
    else
      std::snprintf(buf, sizeof buf, latex ? "%.1f $\\pm$ %.1f" : "%.1f ± %.1f", 100 * c->mean(),
                    100 * c->std());
    return buf;
  };
  auto find_cell = [&](const std::string& setting, const std::string& train,
                       const std::string& test, size_t col) -> const TableCell* {
    for (const auto& r : t.rows)
      if (r.setting == setting && r.train == train && r.test == test) return &r.cells[col];
    return nullptr;
  };
  const bool settings = !t.setting_fields.empty();
  std::vector<std::string> head{settings ? "setting" : "", "train"};
  if (!settings) head.erase(head.begin());
  std::vector<std::string> columns;
  for (const auto& test : tests)
    for (int64_t s : t.samples) columns.push_back(test + " " + std::to_string(s));
  std::vector<std::vector<std::string>> body;
  for (const auto& [setting, train] : row_keys) {
    std::vector<std::string> line;
    if (settings) line.push_back(setting);
    line.push_back(train);
    for (const auto& test : tests)
      for (size_t col = 0; col < t.samples.size(); ++col)
        line.push_back(cell_text(find_cell(setting, train, test, col)));
    body.push_back(line);
  }
  std::string out;
  auto csv_field = [](const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  if (csv) {
    std::vector<std::string> all = head;
    all.insert(all.end(), columns.begin(), columns.end());
    for (size_t i = 0; i < all.size(); ++i) out += (i ? "," : "") + csv_field(all[i]);
    out += "\n";
    for (const auto& line : body) {
      for (size_t i = 0; i < line.size(); ++i) out += (i ? "," : "") + csv_field(line[i]);
      out += "\n";
    }
  } else if (!latex) {
    std::vector<std::string> all = head;
    all.insert(all.end(), columns.begin(), columns.end());
    for (const auto& h : all) out += "| " + h + " ";
    out += "|\n";
    for (size_t i = 0; i < all.size(); ++i) out += i < head.size() ? "| --- " : "| ---: ";
    out += "|\n";
    for (const auto& line : body) {
      for (const auto& v : line) out += "| " + v + " ";
      out += "|\n";
    }
  } else {
    auto tex = [](const std::string& v) {
      std::string o;
      for (char c : v)
        o += (c == '_' || c == '&' || c == '%' || c == '#') ? std::string("\\") + c
                                                            : std::string(1, c);
      return o;
    };
    out += "\\begin{tabular}{" + std::string(head.size(), 'l') + std::string(columns.size(), 'c') +
           "}\n\\toprule\n";
    out += std::string(head.size() - 1, '&');
    for (const auto& test : tests)
      out += " & \\multicolumn{" + std::to_string(t.samples.size()) + "}{c}{" + tex(test) + "}";
    out += " \\\\\n";
    for (size_t i = 0; i < head.size(); ++i) out += (i ? " & " : "") + tex(head[i]);
    for (size_t g = 0; g < tests.size(); ++g)
      for (int64_t s : t.samples) out += " & " + std::to_string(s);
    out += " \\\\\n\\midrule\n";
    for (const auto& line : body) {
      for (size_t i = 0; i < line.size(); ++i)
        out += (i ? " & " : "") + (i < head.size() ? tex(line[i]) : line[i]);
      out += " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n";
  }
  return out;
}

json results_table_json(const ResultsTable& t) {
  json rows = json::array(), cells = json::array();
  for (const auto& r : t.rows) {
    rows.push_back(
        {{"setting", r.setting}, {"values", r.values}, {"train", r.train}, {"test", r.test}});
    json row = json::array();
    for (const auto& c : r.cells)
      row.push_back({{"runs", c.runs},
                     {"finished", c.finished},
                     {"succeeded", c.aucs.size()},
                     {"mean", number_or_null(c.mean())},
                     {"std", number_or_null(c.std())}});
    cells.push_back(row);
  }
  return {{"setting_fields", t.setting_fields},
          {"samples", t.samples},
          {"rows", rows},
          {"cells", cells}};
}

}  // namespace tallrec
