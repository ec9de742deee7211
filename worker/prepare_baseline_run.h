// What a worker does before it starts tallrec-train for a Table 1 baseline (a grid run with a
// "method" other than "llm"): read the interaction files beside the run's prompt files, take the
// same few-shot subset of the same records as the LLM's prompts, number users and items over the
// domain's files, and write the inputs file and a baseline spec
// (schemas/baseline_spec.schema.json). No tokenizer, no model.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace tallrec {

// True when the grid run trains a baseline rather than the LLM.
bool is_baseline_run(const nlohmann::json& run);

// Writes `run_dir`/baseline_inputs.json and `run_dir`/spec.json; returns the spec's path. Of
// `overrides` only "threads" applies (a baseline trains on the CPU). InputError names a missing
// or bad interaction file (`tallrec data prepare` writes them).
std::filesystem::path prepare_baseline_run(const nlohmann::json& run,
                                           const std::filesystem::path& run_dir,
                                           const nlohmann::json& overrides);

}  // namespace tallrec
