#include "worker/prepare_baseline_run.h"

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "input_error_matcher.h"
#include "jobs/data/baseline_inputs.h"
#include "jobs/data/splits.h"
#include "test_paths.h"

namespace tallrec {
namespace {

// Four records a split: prompts and the interactions behind them.
Splits tiny_splits() {
  Splits s;
  for (int i = 0; i < 4; ++i) {
    const bool like = i % 2 == 0;
    for (auto* part : {&s.train, &s.valid, &s.test})
      part->push_back({"i", "in " + std::to_string(i), like ? "Yes." : "No."});
    for (auto* part : {&s.interactions.train, &s.interactions.valid, &s.interactions.test})
      part->push_back(
          {"u" + std::to_string(i), {"a", "b"}, {5, 1}, "c", like ? 5.0 : 1.0, like ? 1 : 0});
  }
  return s;
}

nlohmann::json run_for(const std::filesystem::path& data) {
  return {{"method", "gru4rec"},
          {"domain", "movie"},
          {"sample", 2},
          {"seed", 1},
          {"train", (data / "train.json").string()},
          {"valid", (data / "valid.json").string()},
          {"tests", {{"movie", (data / "test.json").string()}}},
          {"baseline", {{"epochs", 7}}}};
}

TEST(PrepareBaselineRun, WritesTheSpecAndTheFewShotRecordsAsIds) {
  test::ScratchDir dir;
  write_splits(dir / "data", tiny_splits());
  const auto spec_path = prepare_baseline_run(run_for(dir / "data"), dir / "run", {});
  const nlohmann::json spec = nlohmann::json::parse(read_file(spec_path));
  EXPECT_EQ(spec["method"], "gru4rec");
  EXPECT_EQ(spec["epochs"], 7) << "the grid's baselines settings";
  EXPECT_EQ(spec["seed"], 1);
  const BaselineInputs in = read_baseline_inputs(spec["inputs"].get<std::string>());
  EXPECT_EQ(in.train.rows(), 2);
  EXPECT_EQ(in.valid.rows(), 4);
  EXPECT_EQ(in.tests.at("movie").rows(), 4);
}

// A stale interaction file beside newer prompts would train a baseline on other records than the
// LLM's: the worker refuses it, naming the file.
TEST(PrepareBaselineRun, RefusesInteractionsThatAreNotThePromptsRecords) {
  test::ScratchDir dir;
  Splits s = tiny_splits();
  write_splits(dir / "data", s);
  const auto interactions = dir / "data" / "valid.interactions.jsonl";
  s.interactions.valid.pop_back();
  write_file_atomically(interactions, interaction_records_to_jsonl(s.interactions.valid));
  test::expect_input_error([&] { prepare_baseline_run(run_for(dir / "data"), dir / "run", {}); },
                           interactions.string() + ": 3 records, but ");
  s.interactions.valid = tiny_splits().interactions.valid;
  s.interactions.valid[2].label = 0;
  write_file_atomically(interactions, interaction_records_to_jsonl(s.interactions.valid));
  test::expect_input_error([&] { prepare_baseline_run(run_for(dir / "data"), dir / "run", {}); },
                           "record 2's label differs from its prompt's answer");
  std::filesystem::remove(interactions);
  test::expect_input_error([&] { prepare_baseline_run(run_for(dir / "data"), dir / "run", {}); },
                           "no interaction file beside");
}

}  // namespace
}  // namespace tallrec
