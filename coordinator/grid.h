// Experiment grids (schemas/grid.schema.json): a sweep over train domain x few-shot sample
// count x seed x hyper-parameters. Expansion is the cartesian product; each run is keyed by
// the SHA-256 of its resolved spec, so the same point submitted twice is the same run.
#pragma once

#include <cstdint>
#include <filesystem>
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

// A grid file as `tallrec submit` reads it: relative paths (base_model, tokenizer,
// init_adapter, every dataset file) are resolved against the grid file's folder, so the store
// holds absolute paths; with `check_paths`, each must exist here (workers need the same paths:
// a shared filesystem). InputError names the field and the path.
Grid parse_grid_file(const std::filesystem::path& file, bool check_paths);

}  // namespace tallrec
