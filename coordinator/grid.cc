#include "coordinator/grid.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/model_config.h"
#include "common/protocol.h"
#include "common/run_spec.h"
#include "common/sha256.h"
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

}  // namespace

std::vector<std::string> grid_document_fields() {
  return {"name",         "base_model",  "init_adapter", "tokenizer",
          "datasets",     "domains",     "test_domains", "samples",
          "seeds",        "hyper",       "priority",     "max_attempts",
          "valid_sample", "test_sample", "special_ids",  "memory_limit_gib"};
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
  auto fail = [&](const std::string& what) -> void { throw InputError(origin + ": " + what); };
  if (!doc.is_object()) fail("a grid is a JSON object");
  const std::vector<std::string> known = grid_document_fields();
  for (auto& [k, v] : doc.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      fail("unknown field \"" + k + "\"");
  // JSON Schema counts 3.0 an integer (the OpenAPI document's grid says "integer"), so where a
  // grid wants an integer a whole float is that integer. Float fields (lr, lora_alpha,
  // lora_dropout, memory_limit_gib) stay as written: their values are in run keys.
  auto as_integer = [](json& v) {
    if (!v.is_number_float()) return;
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) <= 9007199254740992.0)
      v = int64_t(d);
  };
  for (const char* key : {"priority", "max_attempts", "valid_sample", "test_sample"})
    if (doc.contains(key)) as_integer(doc[key]);
  for (const char* key : {"samples", "seeds"})
    if (doc.contains(key) && doc[key].is_array())
      for (auto& v : doc[key]) as_integer(v);
  if (doc.contains("hyper") && doc["hyper"].is_object())
    for (const char* key :
         {"lora_r", "epochs", "cutoff_len", "batch_size", "micro_batch_size", "max_steps"})
      if (doc["hyper"].contains(key) && doc["hyper"][key].is_array())
        for (auto& v : doc["hyper"][key]) as_integer(v);
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
  Grid g;
  g.document = doc;
  g.name = need_string("name");
  const std::string base_model = need_string("base_model");
  const std::string tokenizer = need_string("tokenizer");
  if (doc.contains("priority")) {
    if (!doc["priority"].is_number_integer()) fail("field \"priority\" must be an integer");
    g.priority = doc["priority"];
  }
  if (doc.contains("max_attempts")) {
    if (!doc["max_attempts"].is_number_integer() || doc["max_attempts"].get<int64_t>() < 1)
      fail("field \"max_attempts\" must be an integer >= 1");
    g.max_attempts = doc["max_attempts"];
  }
  if (!doc.contains("datasets") || !doc["datasets"].is_object())
    fail("field \"datasets\" must be an object");
  const json& datasets = doc["datasets"];
  auto need_path = [&](const std::string& domain, const char* split) {
    const json& files = datasets[domain];
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
      if (!datasets.contains(d.get<std::string>()))
        fail(std::string(field) + ": \"" + d.get<std::string>() + "\" is not in datasets");
    }
  };
  const json domains = list("domains");
  check_domains(domains, "domains");
  for (const auto& d : domains)
    for (const char* split : {"train", "valid", "test"}) need_path(d.get<std::string>(), split);
  const json test_domains = doc.contains("test_domains") ? list("test_domains") : json();
  if (!test_domains.is_null()) check_domains(test_domains, "test_domains");
  for (const auto& d : test_domains.is_null() ? domains : test_domains)
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
  const json samples = list("samples");
  for (const auto& s : samples)
    if (!s.is_number_integer() || s.get<int64_t>() < -1 || s.get<int64_t>() == 0)
      fail("samples: " + s.dump() + " must be -1 or a positive count");
  const json seeds = list("seeds");
  for (const auto& s : seeds)
    if (!s.is_number_unsigned() && !(s.is_number_integer() && s.get<int64_t>() >= 0))
      fail("seeds: " + s.dump() + " must be a non-negative integer");

  // Hyper-parameter axes: each a non-empty list (default: TALLRec's single value).
  std::vector<std::pair<std::string, json>> axes;
  const json hyper = doc.value("hyper", json::object());
  if (!hyper.is_object()) fail("field \"hyper\" must be an object");
  for (const auto& item : hyper.items()) {
    const std::string& k = item.key();  // a named reference: lambdas may capture it (structured
                                        // bindings: not in clang 14)
    const json& v = item.value();
    const GridAxis* axis = find_axis(k);
    if (!axis) fail("hyper: unknown hyper-parameter \"" + k + "\"");
    if (!v.is_array() || v.empty()) fail("hyper." + k + " must be a non-empty list");
    if (!axis->always)
      for (const auto& value : v)
        if (std::find(axis->allowed.begin(), axis->allowed.end(), value) == axis->allowed.end())
          fail("hyper." + k + ": " + value.dump() + " is not one of " + axis->allowed.dump());
  }
  // Each value of the always-present axes has the type and range the trainer accepts, so a bad
  // one is refused here, naming it, and not on every worker that leases the run.
  static const std::vector<std::string> kModules(std::begin(kProjections), std::end(kProjections));
  auto check_value = [&](const std::string& k, const json& v) {
    auto bad = [&](const std::string& want) {
      fail("hyper." + k + ": " + v.dump() + " must be " + want);
    };
    const bool integer = v.is_number_integer();
    if (k == "lr" || k == "lora_alpha") {
      if (!v.is_number() || v.get<double>() <= 0) bad("a positive number");
    } else if (k == "lora_dropout") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() >= 1) bad("a number in [0, 1)");
    } else if (k == "target_modules") {
      if (!v.is_array() || v.empty()) bad("a non-empty list of module names");
      for (const auto& m : v)
        if (!m.is_string() ||
            std::find(kModules.begin(), kModules.end(), m.get<std::string>()) == kModules.end())
          bad("a list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    } else if (k == "max_steps") {
      if (!integer || (v.get<int64_t>() != -1 && v.get<int64_t>() < 1))
        bad("-1 (from the epochs) or a positive integer");
    } else if (k == "cutoff_len") {
      if (!integer || v.get<int64_t>() < 16) bad("an integer of at least 16");
    } else if (!integer || v.get<int64_t>() < 1) {  // lora_r, epochs, batch_size, micro_batch_size
      bad("a positive integer");
    }
  };
  for (const GridAxis& axis : grid_axes())
    if (axis.always && hyper.contains(axis.name))
      for (const auto& v : hyper[axis.name]) check_value(axis.name, v);
  for (const GridAxis& axis : grid_axes())  // the always-present axes first, as keys have them
    if (axis.always)
      axes.push_back({axis.name, hyper.contains(axis.name) ? hyper[axis.name]
                                                           : json::array({axis.default_value})});
  for (const GridAxis& axis : grid_axes())
    if (!axis.always && hyper.contains(axis.name)) axes.push_back({axis.name, hyper[axis.name]});

  // Bounded before expanding: a document of a few kB must not become millions of runs in memory.
  double expanded = double(domains.size()) * double(samples.size()) * double(seeds.size());
  for (const auto& [k, values] : axes) expanded *= double(values.size());
  if (expanded > double(kMaxGridRuns))
    fail("expands to " + std::to_string(int64_t(expanded)) + " runs; a grid may have at most " +
         std::to_string(kMaxGridRuns));

  // Cartesian product: domain x sample x seed x every hyper axis.
  std::vector<size_t> index(axes.size(), 0);
  for (const auto& domain : domains) {
    for (const auto& sample : samples) {
      for (const auto& seed : seeds) {
        std::fill(index.begin(), index.end(), 0);
        for (bool more = true; more;) {
          const std::string d = domain.get<std::string>();
          json tests = json::object();
          for (const auto& t : test_domains.is_null() ? json::array({d}) : test_domains)
            tests[t.get<std::string>()] = datasets[t.get<std::string>()]["test"];
          json spec = {{"base_model", base_model},
                       {"tokenizer", tokenizer},
                       {"domain", d},
                       {"train", datasets[d]["train"]},
                       {"valid", datasets[d]["valid"]},
                       {"tests", tests},
                       {"sample", sample},
                       {"seed", seed}};
          for (const char* key :
               {"init_adapter", "valid_sample", "test_sample", "special_ids", "memory_limit_gib"})
            if (doc.contains(key)) spec[key] = doc[key];
          for (size_t a = 0; a < axes.size(); ++a) spec[axes[a].first] = axes[a].second[index[a]];
          // The recipe's micro-batch, unless the grid names one (its other settings reach the
          // trainer through the spec's recipe field; the batch_size check below needs this one).
          if (spec.contains("recipe") && !hyper.contains("micro_batch_size")) {
            RunSpec recipe;
            recipe.recipe = parse_enum<Recipe>(spec["recipe"].get<std::string>(), origin);
            apply_recipe(recipe);
            spec["micro_batch_size"] = recipe.micro_batch_size;
          }
          // nlohmann::json keeps keys sorted, so dump() is canonical.
          if (spec["batch_size"].get<int64_t>() % spec["micro_batch_size"].get<int64_t>() != 0)
            fail("hyper: batch_size " + spec["batch_size"].dump() +
                 " is not a multiple of micro_batch_size " + spec["micro_batch_size"].dump());
          const std::string text = spec.dump();
          // The LEASE carries the spec: one that cannot fit a TRP/1 message could never be leased.
          if (text.size() > kMaxMessageBytes / 2)
            fail("a run's spec is " + std::to_string(text.size()) + " bytes; at most " +
                 std::to_string(kMaxMessageBytes / 2) + " fit in a lease");
          g.runs.push_back(
              {sha256_hex(text), spec, d, sample.get<int64_t>(), seed.get<uint64_t>()});
          more = false;
          for (size_t a = axes.size(); a-- > 0;) {
            if (++index[a] < axes[a].second.size()) {
              more = true;
              break;
            }
            index[a] = 0;
          }
        }
      }
    }
  }
  return g;
}

}  // namespace tallrec
