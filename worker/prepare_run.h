// What a worker does before it starts tallrec-train: turn a run of a grid (coordinator/grid.h)
// into tokenized data (cached by content) and a trainer spec (schemas/run_spec.schema.json).
#pragma once

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/data/tokenizer.h"

namespace tallrec {

// Writes `run_dir`/spec.json and returns its path. `overrides` are merged into the trainer spec
// last (the demo caps max_steps this way). Tokenizing stops with an Error once `*cancel` is true.
std::filesystem::path prepare_run(const nlohmann::json& run, const Tokenizer& tokenizer,
                                  const std::filesystem::path& cache_dir,
                                  const std::filesystem::path& run_dir,
                                  const nlohmann::json& overrides = nlohmann::json::object(),
                                  const std::atomic<bool>* cancel = nullptr);

}  // namespace tallrec
