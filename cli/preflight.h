// Pre-flight for a sweep (`tallrec check GRID`; `tallrec submit` runs its cheap part): before
// anything is queued, every distinct base model, adapter, tokenizer and dataset of the grid is
// checked from its headers (no weights are loaded, no torch), and each run's GPU memory is
// estimated against a card size. The failures TALLRec users report (an LFS pointer for
// weights, an adapter of another rank, an empty adapter, a tokenizer that does not fit the
// model, labels that are not Yes./No.) are caught here rather than on a worker, hours later.
// A baseline run (coordinator/grid.h's methods) has its datasets checked, not the LLM's model,
// tokenizer, adapter or memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "coordinator/grid.h"

namespace tallrec {

struct PreflightLine {
  std::string what;     // "model", "tokenizer", "adapter", "dataset", "memory"
  std::string subject;  // the path or setting checked
  bool ok = true;
  std::string detail;
};

struct PreflightOptions {
  bool datasets = true;      // parse every dataset file and check its labels (the slow part)
  std::string missing_hint;  // appended to "does not exist" (submit: its --no-check-paths)
  bool memory = true;        // estimate GPU memory per distinct setting
  double gpu_memory_bytes = 24.0 * (1ull << 30);
};

// Every finding in one pass: first each path the grid names that does not exist here (a FAIL
// line naming its field), then the checks of everything that does exist; a check of something
// missing is not attempted (its FAIL line says why). Never throws for what it finds.
std::vector<PreflightLine> preflight(const Grid& grid, const PreflightOptions& options);
std::string format_preflight(const std::vector<PreflightLine>& lines);
bool preflight_ok(const std::vector<PreflightLine>& lines);

// "--gpu-memory 24GiB": a byte count with an optional KiB/MiB/GiB/GB suffix; InputError otherwise.
double parse_memory_size(const std::string& text);

}  // namespace tallrec
