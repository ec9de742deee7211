#include "coordinator/grid.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/model_config.h"
#include "common/protocol.h"
#include "common/run_spec.h"
#include "common/sha256.h"
#include "common/spec_enums.h"
#include "jobs/data/special_ids.h"

namespace tallrec {
namespace {

// PATH_MAX: a longer path names no file.
constexpr size_t kMaxGridPath = 4096;

using json = nlohmann::json;

// The axes a grid may vary, with their defaults: common/run_spec.h's grid_axes(), the same
// table the worker translates a run with.
const GridAxis* find_axis(const std::string& name) {
  for (const GridAxis& axis : grid_axes())
    if (axis.name == name) return &axis;
  return nullptr;
}

// The grid's integer fields, outside `hyper`: one each, or a list of them.
constexpr const char* kIntegerFields[] = {"priority", "max_attempts", "valid_sample",
                                          "test_sample"};
constexpr const char* kIntegerLists[] = {"samples", "seeds"};
// The fields that every run's spec takes from the grid as they are, when the grid has them.
constexpr const char* kSharedFields[] = {"init_adapter", "valid_sample", "test_sample",
                                         "special_ids", "memory_limit_gib"};

[[noreturn]] void refuse(const std::string& origin, const std::string& what) {
  throw InputError(origin + ": " + what);
}

// JSON Schema counts 3.0 an integer (the OpenAPI document's grid says "integer"), so where a
// grid wants an integer a whole float is that integer. Float fields (lr, lora_alpha,
// lora_dropout, memory_limit_gib) stay as written: their values are in run keys.
void normalise(json& doc) {
  if (!doc.is_object()) return;
  auto as_integer = [](json& v) {
    if (!v.is_number_float()) return;
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) <= 9007199254740992.0)
      v = int64_t(d);
  };
  auto list_as_integers = [&](json& list) {
    if (list.is_array())
      for (auto& v : list) as_integer(v);
  };
  for (const char* key : kIntegerFields)
    if (doc.contains(key)) as_integer(doc[key]);
  for (const char* key : kIntegerLists)
    if (doc.contains(key)) list_as_integers(doc[key]);
  if (doc.contains("hyper") && doc["hyper"].is_object())
    for (const GridAxis& axis : grid_axes())
      if (axis.always && axis.values.type == AxisType::kInteger && doc["hyper"].contains(axis.name))
        list_as_integers(doc["hyper"][axis.name]);
  // The baselines' integer settings: those whose default is an integer.
  if (doc.contains("baselines") && doc["baselines"].is_object()) {
    const json defaults = baseline_spec_json(BaselineSpec{});
    for (auto& [key, value] : doc["baselines"].items())
      if (defaults.contains(key) && defaults[key].is_number_integer()) as_integer(value);
  }
}

// A spec field a grid run varies over, with its values in the order runs are expanded.
struct Axis {
  std::string field;
  json values;
};

// A checked grid before it is expanded: the grid's own fields, what every run's spec shares, and
// the axes of the product (domain, sample, seed, then the hyper axes: the always-present ones
// first, as keys have them).
struct GridPlan {
  Grid grid;    // name, priority, max_attempts and the document; no runs yet
  json shared;  // spec fields every run has
  std::vector<Axis> axes;
  json datasets, test_domains;  // each run's data follows from its domain
  bool micro_batch_named = false;
  json baseline = json::object();  // the grid's `baselines` settings, in every baseline run
};

// What a baseline run's spec keeps of a grid run's: the fields a baseline uses. The rest (the
// model, the tokenizer, the LLM's hyper axes) would only make runs that train the same thing
// look different.
constexpr const char* kBaselineRunFields[] = {
    "domain", "sample", "seed", "method", "train", "valid", "tests", "valid_sample", "test_sample"};

// The BaselineSpec fields a grid's `baselines` object may set: all but those the run or the
// worker decides.
bool grid_may_set_baseline_field(const std::string& field) {
  return field != "method" && field != "inputs" && field != "seed" && field != "threads";
}

// Refuses a value of an always-present axis that its rules do not allow, naming both.
void check_axis_value(const std::string& origin, const GridAxis& axis, const json& v) {
  const AxisValues& rule = axis.values;
  auto bad = [&](const std::string& want) {
    refuse(origin, "hyper." + axis.name + ": " + v.dump() + " must be " + want);
  };
  switch (rule.type) {
    case AxisType::kNumber:
      if (!v.is_number() ||
          (rule.least_excluded ? v.get<double>() <= rule.least : v.get<double>() < rule.least) ||
          v.get<double>() >= rule.below)
        bad(rule.must_be);
      return;
    case AxisType::kInteger:
      if (!v.is_number_integer() ||
          (v.get<int64_t>() < rule.least && v.get<int64_t>() != rule.also))
        bad(rule.must_be);
      return;
    case AxisType::kModules: {
      if (!v.is_array() || v.empty()) bad(rule.must_be);
      std::string names;
      for (const char* m : kProjections) names += std::string(names.empty() ? "" : ", ") + m;
      for (const auto& m : v)
        if (!m.is_string() || std::find(std::begin(kProjections), std::end(kProjections),
                                        m.get<std::string>()) == std::end(kProjections))
          bad("a list of " + names);
      return;
    }
  }
}

// The hyper-parameter axes of a grid's `hyper` object, each a non-empty list of allowed values,
// in the order keys have them: the always-present ones first (with RunSpec's default where the
// grid names none), then the ones it names.
std::vector<Axis> hyper_axes(const json& hyper, const std::string& origin) {
  for (const auto& [k, v] : hyper.items()) {
    const GridAxis* axis = find_axis(k);
    if (!axis) refuse(origin, "hyper: unknown hyper-parameter \"" + k + "\"");
    if (!v.is_array() || v.empty()) refuse(origin, "hyper." + k + " must be a non-empty list");
    if (!axis->always)
      for (const auto& value : v)
        if (std::find(axis->allowed.begin(), axis->allowed.end(), value) == axis->allowed.end())
          refuse(origin,
                 "hyper." + k + ": " + value.dump() + " is not one of " + axis->allowed.dump());
  }
  for (const GridAxis& axis : grid_axes())
    if (axis.always && hyper.contains(axis.name))
      for (const auto& v : hyper[axis.name]) check_axis_value(origin, axis, v);
  std::vector<Axis> axes;
  for (const GridAxis& axis : grid_axes())  // the always-present axes first, as keys have them
    if (axis.always) {
      axes.push_back({axis.name, hyper.contains(axis.name) ? hyper[axis.name]
                                                           : json::array({axis.default_value})});
    }
  for (const GridAxis& axis : grid_axes())
    if (!axis.always && hyper.contains(axis.name)) axes.push_back({axis.name, hyper[axis.name]});
  return axes;
}

// Every check of a grid document, in the order its refusals name them; the plan to expand.
GridPlan validate(const json& doc, const std::string& origin) {
  auto fail = [&](const std::string& what) { refuse(origin, what); };
  if (!doc.is_object()) fail("a grid is a JSON object");
  const std::vector<std::string> known = grid_document_fields();
  for (auto& [k, v] : doc.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      fail("unknown field \"" + k + "\"");
  auto need_string = [&](const char* key) {
    if (!doc.contains(key) || !doc[key].is_string() || doc[key].get<std::string>().empty())
      fail("field \"" + std::string(key) + "\" must be a non-empty string");
    return doc[key].get<std::string>();
  };
  // Every path and name of a grid is bounded (a path longer than PATH_MAX names nothing; a 30 MiB
  // one once reached the file system and ended in "File name too long", exit 1).
  auto bounded = [&](const json& value, const std::string& field) {
    if (value.is_string() && value.get<std::string>().size() > kMaxGridPath)
      fail("field \"" + field + "\" is " + std::to_string(value.get<std::string>().size()) +
           " bytes; a path or name may have at most " + std::to_string(kMaxGridPath));
  };
  for (const char* key : {"name", "base_model", "tokenizer", "init_adapter"})
    if (doc.contains(key)) bounded(doc[key], key);
  if (doc.contains("datasets") && doc["datasets"].is_object())
    for (const auto& [domain, files] : doc["datasets"].items()) {
      if (domain.size() > kMaxGridPath)
        fail("a datasets key is longer than " + std::to_string(kMaxGridPath) + " bytes");
      if (files.is_object())
        for (const auto& [split, path] : files.items())
          bounded(path, "datasets." + domain + "." + split);
    }
  GridPlan p;
  p.grid.document = doc;
  p.grid.name = need_string("name");
  if (doc.contains("priority")) {
    if (!doc["priority"].is_number_integer()) fail("field \"priority\" must be an integer");
    p.grid.priority = doc["priority"];
  }
  if (doc.contains("max_attempts")) {
    if (!doc["max_attempts"].is_number_integer() || doc["max_attempts"].get<int64_t>() < 1)
      fail("field \"max_attempts\" must be an integer >= 1");
    p.grid.max_attempts = doc["max_attempts"];
  }
  if (!doc.contains("datasets") || !doc["datasets"].is_object())
    fail("field \"datasets\" must be an object");
  p.datasets = doc["datasets"];
  auto need_path = [&](const std::string& domain, const char* split) {
    const json& files = p.datasets[domain];
    if (!files.is_object() || !files.contains(split) || !files[split].is_string())
      fail("datasets." + domain + "." + split + " must be a path");
  };
  auto list = [&](const char* key) {
    if (!doc.contains(key) || !doc[key].is_array() || doc[key].empty())
      fail("field \"" + std::string(key) + "\" must be a non-empty list");
    return doc[key];
  };
  auto check_domains = [&](const json& names, const char* field) {
    for (const auto& d : names) {
      if (!d.is_string()) fail(std::string(field) + ": " + d.dump() + " is not a domain name");
      if (!p.datasets.contains(d.get<std::string>()))
        fail(std::string(field) + ": \"" + d.get<std::string>() + "\" is not in datasets");
    }
  };
  const json domains = list("domains");
  check_domains(domains, "domains");
  for (const auto& d : domains)
    for (const char* split : {"train", "valid", "test"}) need_path(d.get<std::string>(), split);
  if (doc.contains("test_domains")) {
    p.test_domains = list("test_domains");
    check_domains(p.test_domains, "test_domains");
  }
  for (const auto& d : p.test_domains.is_null() ? domains : p.test_domains)
    need_path(d.get<std::string>(), "test");
  for (const char* field : {"valid_sample", "test_sample"})
    if (doc.contains(field) && (!doc[field].is_number_integer() || doc[field].get<int64_t>() < 1))
      fail(std::string("field \"") + field + "\" must be a positive count");
  if (doc.contains("memory_limit_gib") &&
      (!doc["memory_limit_gib"].is_number() || doc["memory_limit_gib"].get<double>() <= 0 ||
       doc["memory_limit_gib"].get<double>() > 1e6))
    fail("field \"memory_limit_gib\" must be a positive number of GiB");
  if (doc.contains("special_ids")) {
    if (!doc["special_ids"].is_string() ||
        doc["special_ids"].get_ref<const std::string&>().size() > 256)
      fail(
          "field \"special_ids\" must be a string such as \"llama\" or \"llama,pad=2\" "
          "(docs/dev/data.md)");
    try {
      parse_special_ids(doc["special_ids"].get<std::string>());
    } catch (const InputError& e) {
      fail(std::string("field \"special_ids\": ") + e.what());
    }
  }
  for (const char* key : kSharedFields)
    if (doc.contains(key)) p.shared[key] = doc[key];
  const json samples = list("samples");
  for (const auto& s : samples)
    if (!s.is_number_integer() || s.get<int64_t>() < -1 || s.get<int64_t>() == 0)
      fail("samples: " + s.dump() + " must be -1 or a positive count");
  const json seeds = list("seeds");
  for (const auto& s : seeds)
    if (!s.is_number_unsigned() && !(s.is_number_integer() && s.get<int64_t>() >= 0))
      fail("seeds: " + s.dump() + " must be a non-negative integer");
  // What each run trains (common/spec_enums.h's Method): the LLM unless the grid names others.
  json methods = json::array({name_of(Method::kLlm)});
  if (doc.contains("methods")) {
    methods = list("methods");
    for (auto m = methods.begin(); m != methods.end(); ++m) {
      if (!m->is_string()) fail("methods: " + m->dump() + " is not a method name");
      const std::string name = m->get<std::string>();
      if (!enum_from_name<Method>(name))
        fail("methods: \"" + printable_utf8(name.substr(0, 200)) + "\" is not a method (expected " +
             enum_names_text<Method>() + ")");
      if (std::find(methods.begin(), m, *m) != m) fail("methods: \"" + name + "\" is listed twice");
    }
  }
  // The LLM needs a model and its tokenizer; a grid of baselines alone may name neither.
  const bool any_llm =
      std::find(methods.begin(), methods.end(), name_of(Method::kLlm)) != methods.end();
  for (const char* key : {"base_model", "tokenizer"})
    if (any_llm || doc.contains(key)) p.shared[key] = need_string(key);
  p.axes = {{"domain", domains},
            {"sample", samples},
            {"seed", seeds},
            {EnumNames<Method>::field, methods}};
  // Settings of every baseline run (common/baseline_spec.h's fields), checked as the trainer
  // will check them.
  if (doc.contains("baselines")) {
    const json& b = doc["baselines"];
    if (!b.is_object()) fail("field \"baselines\" must be an object of baseline settings");
    for (const auto& [key, value] : b.items())
      if (!grid_may_set_baseline_field(key))
        fail("baselines: \"" + printable_utf8(key.substr(0, 200)) +
             "\" is the run's or the worker's to set, not the grid's");
    // As each of the grid's baselines will be checked (SASRec's and DROS's heads must divide the
    // hidden size; the others have no such rule).
    for (const auto& m : methods) {
      json spec = b;
      spec["method"] = m == name_of(Method::kLlm) ? json(name_of(Method::kGru4Rec)) : m;
      spec["inputs"] = "-";
      try {
        parse_baseline_spec(spec, "baselines");
      } catch (const InputError& e) {
        fail(e.what());
      }
    }
    // Only what differs from the defaults: {"lr": 0.001} and {} train the same, one key.
    const json defaults = baseline_spec_json(BaselineSpec{});
    for (const auto& [key, value] : b.items())
      if (value != defaults.at(key) && !(value.is_number() && defaults.at(key).is_number() &&
                                         value.get<double>() == defaults.at(key).get<double>()))
        p.baseline[key] = value;
  }

  const json hyper = doc.value("hyper", json::object());
  if (!hyper.is_object()) fail("field \"hyper\" must be an object");
  for (Axis& axis : hyper_axes(hyper, origin)) p.axes.push_back(std::move(axis));
  p.micro_batch_named = hyper.contains("micro_batch_size");

  // Bounded before expanding: a document of a few kB must not become millions of runs in memory.
  double expanded = 1;
  for (const Axis& axis : p.axes) expanded *= double(axis.values.size());
  if (expanded > double(kMaxGridRuns))
    fail("expands to " + std::to_string(int64_t(expanded)) + " runs; a grid may have at most " +
         std::to_string(kMaxGridRuns));
  return p;
}

// The next point of the product: the last axis turns fastest, as an odometer's digits; false
// once every point was visited.
bool next_point(std::vector<size_t>& at, const std::vector<Axis>& axes) {
  for (size_t a = axes.size(); a-- > 0;) {
    if (++at[a] < axes[a].values.size()) return true;
    at[a] = 0;
  }
  return false;
}

// The runs of the cartesian product of the plan's axes, each keyed by its spec.
std::vector<GridRun> expand(const GridPlan& p, const std::string& origin) {
  std::vector<GridRun> runs;
  std::set<std::string> keys;  // a baseline run is the same for every point of the LLM's axes
  std::vector<size_t> at(p.axes.size(), 0);
  do {
    json spec = p.shared;
    for (size_t a = 0; a < p.axes.size(); ++a) spec[p.axes[a].field] = p.axes[a].values[at[a]];
    const std::string d = spec["domain"].get<std::string>();
    spec["train"] = p.datasets[d]["train"];
    spec["valid"] = p.datasets[d]["valid"];
    // An LLM run names no method, so that its key is the one it had before grids had methods
    // (common/baseline_spec.h's spec_method() reads it back). A baseline is tested on its own
    // domain only, whatever test_domains says: its item ids mean nothing in another domain's data.
    const bool llm = spec[EnumNames<Method>::field] == name_of(Method::kLlm);
    if (llm) spec.erase(EnumNames<Method>::field);
    json tests = json::object();
    for (const auto& t : p.test_domains.is_null() || !llm ? json::array({d}) : p.test_domains)
      tests[t.get<std::string>()] = p.datasets[t.get<std::string>()]["test"];
    spec["tests"] = tests;
    if (!llm) {
      json kept = json::object();
      for (const char* field : kBaselineRunFields)
        if (spec.contains(field)) kept[field] = spec[field];
      if (!p.baseline.empty()) kept["baseline"] = p.baseline;
      const std::string text = kept.dump();
      if (keys.insert(sha256_hex(text)).second)
        runs.push_back({sha256_hex(text), kept, d, kept["sample"].get<int64_t>(),
                        kept["seed"].get<uint64_t>()});
      continue;
    }
    // The recipe's micro-batch, unless the grid names one (its other settings reach the
    // trainer through the spec's recipe field; the batch_size check below needs this one).
    if (spec.contains("recipe") && !p.micro_batch_named) {
      RunSpec recipe;
      recipe.recipe = parse_enum<Recipe>(spec["recipe"].get<std::string>(), origin);
      apply_recipe(recipe);
      spec["micro_batch_size"] = recipe.micro_batch_size;
    }
    if (spec["batch_size"].get<int64_t>() % spec["micro_batch_size"].get<int64_t>() != 0)
      refuse(origin, "hyper: batch_size " + spec["batch_size"].dump() +
                         " is not a multiple of micro_batch_size " +
                         spec["micro_batch_size"].dump());
    // nlohmann::json keeps keys sorted, so dump() is canonical.
    const std::string text = spec.dump();
    // The LEASE carries the spec: one that cannot fit a TRP/1 message could never be leased.
    if (text.size() > kMaxMessageBytes / 2)
      refuse(origin, "a run's spec is " + std::to_string(text.size()) + " bytes; at most " +
                         std::to_string(kMaxMessageBytes / 2) + " fit in a lease");
    runs.push_back(
        {sha256_hex(text), spec, d, spec["sample"].get<int64_t>(), spec["seed"].get<uint64_t>()});
  } while (next_point(at, p.axes));
  return runs;
}

}  // namespace

std::vector<std::string> grid_document_fields() {
  return {"name",        "base_model",       "init_adapter", "tokenizer",    "datasets",
          "domains",     "test_domains",     "samples",      "seeds",        "methods",
          "hyper",       "priority",         "max_attempts", "valid_sample", "test_sample",
          "special_ids", "memory_limit_gib", "baselines"};
}

std::vector<std::string> grid_hyper_axes() {
  std::vector<std::string> out;
  for (const GridAxis& axis : grid_axes()) out.push_back(axis.name);
  return out;
}

void for_each_grid_path(nlohmann::json& doc,
                        const std::function<void(const std::string&, nlohmann::json&)>& visit) {
  if (!doc.is_object()) return;
  for (const char* key : {"base_model", "tokenizer", "init_adapter"})
    if (doc.contains(key) && doc[key].is_string()) visit(key, doc[key]);
  if (doc.contains("datasets") && doc["datasets"].is_object())
    for (auto& [domain, files] : doc["datasets"].items())
      if (files.is_object())
        for (auto& [split, path] : files.items())
          if (path.is_string()) visit("datasets." + domain + "." + split, path);
}

Grid parse_grid_file(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  const std::string origin = file.string();
  if (fs::is_directory(file)) throw InputError(origin + ": is a folder, not a grid file");
  json doc = parse_json_from_outside(read_file(file), origin);
  if (!doc.is_object()) return parse_grid(doc.dump(), origin);  // parse_grid says what is wrong
  const fs::path base = fs::absolute(file).parent_path();
  for_each_grid_path(doc, [&](const std::string& name, json& field) {
    if (field.get<std::string>().empty()) return;  // parse_grid names the error
    if (field.get<std::string>().size() > kMaxGridPath)
      return;  // parse_grid refuses it by name, before any filesystem call sees it
    fs::path p = field.get<std::string>();
    if (p.is_relative()) p = (base / p).lexically_normal();
    std::error_code ec;
    (void)fs::exists(p, ec);  // a missing path is no error here (the pre-flight lists those)
    if (ec)                   // a name component too long, a permission: the file system's word
      throw InputError(origin + ": " + name + ": " + printable_utf8(p.string().substr(0, 200)) +
                       ": " + ec.message());
    field = p.string();
  });
  return parse_grid(doc.dump(), origin);
}

Grid parse_grid(const std::string& text, const std::string& origin) {
  json doc = parse_json_from_outside(text, origin);
  normalise(doc);
  GridPlan plan = validate(doc, origin);
  plan.grid.runs = expand(plan, origin);
  return std::move(plan.grid);
}

}  // namespace tallrec
