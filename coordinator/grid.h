// Experiment grids (schemas/grid.schema.json): a sweep over train domain x few-shot sample
// count x seed x method x hyper-parameters. Expansion is the cartesian product; each run is keyed
// by the SHA-256 of its resolved spec, so the same point submitted twice is the same run.
//
// Methods (the grid's `methods`, default ["llm"]; common/spec_enums.h's Method): what a run
// trains, the LLM (TALLRec) or one of Table 1's sequential recommenders. A run's spec holds
// "method" only when it is not "llm", so an LLM run's spec and key are those of a grid without
// methods (spec_method() in common/baseline_spec.h reads it back). A baseline run is tested on
// its own domain only, whatever test_domains says (its item ids mean nothing in another
// domain's data), and holds only what a baseline uses (domain, sample, seed, method, its data,
// valid_sample, test_sample, and as "baseline" the grid's `baselines` settings that differ from
// the defaults), so the LLM's fields and hyper axes never make copies of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tallrec {

struct GridRun {
  std::string key;      // SHA-256 of `spec` (canonical JSON)
  nlohmann::json spec;  // everything a worker needs to prepare data and train
  std::string domain;
  int64_t sample;
  uint64_t seed;
};

struct Grid {
  std::string name;
  int64_t priority = 0;
  int64_t max_attempts = 3;
  nlohmann::json document;  // as submitted
  std::vector<GridRun> runs;
};

// The most runs one grid may expand to (a 10,000-run sweep is tested; this leaves room).
inline constexpr int64_t kMaxGridRuns = 100000;

// The fields a grid document may have, and the hyper-parameter axes (schemas/grid.schema.json
// must list the same; tests/unit/schema_test.cc checks it).
std::vector<std::string> grid_document_fields();
std::vector<std::string> grid_hyper_axes();

// Parses and expands a grid document. Throws InputError naming `origin` and the field.
// Paths are taken as written (the HTTP API: they are the workers' paths).
Grid parse_grid(const std::string& text, const std::string& origin);

// A grid file as `tallrec submit` and `tallrec check` read it: relative paths (base_model,
// tokenizer, init_adapter, every dataset file) are resolved against the grid file's folder, so the
// store holds absolute paths. Whether they exist here is the pre-flight's question
// (cli/preflight.h), which lists every missing one; workers need the same paths (a shared
// filesystem). InputError for a path the file system refuses to look at (too long, no
// permission), naming the field.
Grid parse_grid_file(const std::filesystem::path& file);

// Calls `visit` with every path field of a grid document that holds a string: "base_model",
// "tokenizer", "init_adapter", then "datasets.<domain>.<split>" for each dataset file. The one
// list of a grid's paths (resolved by parse_grid_file, checked by the pre-flight).
void for_each_grid_path(
    nlohmann::json& document,
    const std::function<void(const std::string& field, nlohmann::json& value)>& visit);

}  // namespace tallrec
