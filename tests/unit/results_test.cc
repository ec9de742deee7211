// The results table: Table 1's mean and sample std over seeds, one row per setting, and its
// exports. Built from run outcomes; no store.
#include "coordinator/results.h"

#include <cmath>

#include "common/error.h"
#include "test_paths.h"

namespace tallrec {
namespace {

RunOutcome outcome(const char* domain, int64_t sample, uint64_t seed, double movie, double book,
                   nlohmann::json hyper = nlohmann::json::object(),
                   RunState state = RunState::kSucceeded) {
  nlohmann::json spec = {
      {"domain", domain}, {"sample", sample},
      {"seed", seed},     {"base_model", "/m/llama-7b"},
      {"lr", 1e-4},       {"tests", {{"movie", "/d/movie"}, {"book", "/d/book"}}}};
  if (hyper.is_object()) spec.update(hyper);
  nlohmann::json result = state == RunState::kSucceeded
                              ? nlohmann::json{{"test_auc", {{"movie", movie}, {"book", book}}}}
                              : nlohmann::json();
  return {domain, sample, seed, state, result, spec};
}

TEST(Results, TableOneMeanAndSampleStdOverSeeds) {
  ResultsTable t = build_results_table(
      {outcome("movie", 16, 0, 0.6, 0.5), outcome("movie", 16, 1, 0.8, 0.7),
       outcome("movie", 64, 0, 0.7, 0.6), outcome("movie", 64, 1, 0, 0, {}, RunState::kRunning)});
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].test, "book");
  EXPECT_EQ(t.rows[1].test, "movie");
  EXPECT_TRUE(t.setting_fields.empty());
  EXPECT_EQ(t.samples, (std::vector<int64_t>{16, 64}));
  const TableCell& c = t.rows[1].cells[0];
  EXPECT_NEAR(c.mean(), 0.7, 1e-12);
  EXPECT_NEAR(c.std(), std::sqrt(0.02), 1e-12);  // ddof 1: sqrt(((0.1)^2 + (0.1)^2) / 1)
  EXPECT_EQ(t.rows[1].cells[1].aucs.size(), 1u);
  EXPECT_EQ(t.rows[1].cells[1].runs, 2);
  EXPECT_EQ(t.rows[1].cells[1].finished, 1);
  EXPECT_TRUE(std::isnan(t.rows[1].cells[1].std()));  // one run: no std
  EXPECT_EQ(t.tallrec_json["movie"]["book"]["llama-7b"]["1"]["16"], 0.7);
  const std::string text = format_results_table(t);
  EXPECT_NE(text.find("0.7000 +- 0.1414 (n=2)"), std::string::npos) << text;
  EXPECT_NE(text.find("(n=1)"), std::string::npos) << text;
}

TEST(Results, RunsThatDifferInMoreThanSeedAreNeverAveragedTogether) {
  // lr 1e-4 and 3e-4 x seeds 0, 1: two settings, each its own rows, each mean over its 2 seeds.
  ResultsTable t =
      build_results_table({outcome("movie", 16, 0, 0.6, 0.5), outcome("movie", 16, 1, 0.8, 0.7),
                           outcome("movie", 16, 0, 0.9, 0.5, {{"lr", 3e-4}}),
                           outcome("movie", 16, 1, 0.7, 0.5, {{"lr", 3e-4}})});
  EXPECT_EQ(t.setting_fields, (std::vector<std::string>{"lr"}));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(t.rows[1].setting, "lr=0.0001");
  EXPECT_EQ(t.rows[3].setting, "lr=0.0003");
  EXPECT_NEAR(t.rows[1].cells[0].mean(), 0.7, 1e-12);
  EXPECT_NEAR(t.rows[3].cells[0].mean(), 0.8, 1e-12);
  EXPECT_EQ(t.rows[3].cells[0].aucs.size(), 2u);
  // TALLRec's layout keeps both seed-0 results, one per setting.
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["llama-7b (lr=0.0001)"]["0"]["16"], 0.6);
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["llama-7b (lr=0.0003)"]["0"]["16"], 0.9);
  // A second base model under the same sweep name is a setting of its own too.
  ResultsTable m =
      build_results_table({outcome("movie", 16, 0, 0.6, 0.5),
                           outcome("movie", 16, 0, 0.9, 0.5, {{"base_model", "/m/other"}})});
  EXPECT_EQ(m.setting_fields, (std::vector<std::string>{"base_model"}));
  EXPECT_EQ(m.rows.size(), 4u);
}

TEST(Results, ExportsTallrecsTableOneLayout) {
  ResultsTable t =
      build_results_table({outcome("movie", 16, 0, 0.6, 0.5), outcome("movie", 16, 1, 0.8, 0.7),
                           outcome("movie", 64, 0, 0.7, 0.6)});
  // Column groups per test domain x sample, AUC x 100; the first test domain seen is "book".
  EXPECT_EQ(export_results_table(t, "csv"),
            "train,book 16,book 64,movie 16,movie 64\nmovie,60.0 ± 14.1,60.0,70.0 ± 14.1,70.0\n");
  const std::string md = export_results_table(t, "markdown");
  EXPECT_NE(md.find("| train | book 16 | book 64 | movie 16 | movie 64 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| movie | 60.0 ± 14.1 | 60.0 | 70.0 ± 14.1 | 70.0 |"), std::string::npos)
      << md;
  const std::string tex = export_results_table(t, "latex");
  EXPECT_NE(tex.find("\\multicolumn{2}{c}{book}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("movie & 60.0 $\\pm$ 14.1 & 60.0 & 70.0 $\\pm$ 14.1 & 70.0 \\\\"),
            std::string::npos)
      << tex;
  EXPECT_THROW(export_results_table(t, "xlsx"), InputError);
}

// A grid's methods (coordinator/grid.h): a baseline's spec names its method and its own domain's
// test set only; the LLM's names none.
nlohmann::json baseline(const char* method, nlohmann::json more = nlohmann::json::object()) {
  nlohmann::json spec = {{"method", method}, {"tests", {{"movie", "/d/movie"}}}};
  spec.update(more);
  return spec;
}

TEST(Results, EachMethodIsARowNamedAsInTableOne) {
  // Out of order on purpose: the rows come as in Table 1, the baselines in Method's order, then
  // TALLRec.
  ResultsTable t = build_results_table(
      {outcome("movie", 16, 0, 0.9, 0.5, baseline("sasrec")),
       outcome("movie", 16, 1, 0.7, 0.5, baseline("sasrec")), outcome("movie", 16, 0, 0.6, 0.5),
       outcome("movie", 16, 1, 0.8, 0.7), outcome("movie", 16, 0, 0.55, 0.5, baseline("gru4rec"))});
  EXPECT_EQ(t.setting_fields, (std::vector<std::string>{"method"}));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(t.rows[0].setting, "GRU4Rec");
  EXPECT_EQ(t.rows[1].setting, "SASRec");
  EXPECT_EQ(t.rows[1].test, "movie") << "a baseline is tested on its own domain only";
  EXPECT_EQ(t.rows[2].setting, "TALLRec");
  EXPECT_EQ(t.rows[2].test, "book");
  EXPECT_EQ(t.rows[3].setting, "TALLRec");
  EXPECT_EQ(t.rows[3].test, "movie");
  EXPECT_EQ(t.rows[3].values, (nlohmann::json{{"method", "llm"}}));
  EXPECT_EQ(t.rows[1].values, (nlohmann::json{{"method", "sasrec"}}));
  EXPECT_NEAR(t.rows[3].cells[0].mean(), 0.7, 1e-12);
  EXPECT_NEAR(t.rows[1].cells[0].mean(), 0.8, 1e-12);
  EXPECT_EQ(t.rows[1].cells[0].aucs.size(), 2u);
  // TALLRec's layout: the LLM under its base model's name, a baseline under its own.
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["llama-7b"]["0"]["16"], 0.6);
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["SASRec"]["0"]["16"], 0.9);
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["GRU4Rec"]["0"]["16"], 0.55);
  EXPECT_FALSE(t.tallrec_json["movie"]["book"].contains("SASRec"));
  // Every export carries the names.
  EXPECT_EQ(export_results_table(t, "csv"),
            "setting,train,movie 16,book 16\n"
            "GRU4Rec,movie,55.0,\n"
            "SASRec,movie,80.0 ± 14.1,\n"
            "TALLRec,movie,70.0 ± 14.1,60.0 ± 14.1\n");
  const std::string md = export_results_table(t, "markdown");
  EXPECT_NE(md.find("| SASRec | movie | 80.0 ± 14.1 | - |"), std::string::npos) << md;
  const std::string tex = export_results_table(t, "latex");
  EXPECT_NE(tex.find("GRU4Rec & movie & 55.0 & - \\\\"), std::string::npos) << tex;
  const nlohmann::json j = results_table_json(t);
  EXPECT_EQ(j["rows"][0]["setting"], "GRU4Rec");
  EXPECT_EQ(j["rows"][0]["values"]["method"], "gru4rec");
  EXPECT_NE(format_results_table(t).find("SASRec   movie -> movie"), std::string::npos)
      << format_results_table(t);
}

TEST(Results, AMethodLabelComesBeforeTheOtherDifferingFields) {
  ResultsTable t = build_results_table({outcome("movie", 16, 0, 0.6, 0.5),
                                        outcome("movie", 16, 0, 0.7, 0.5, {{"lr", 3e-4}}),
                                        outcome("movie", 16, 0, 0.8, 0.5, baseline("sasrec"))});
  EXPECT_EQ(t.setting_fields, (std::vector<std::string>{"lr", "method"}));
  ASSERT_EQ(t.rows.size(), 5u);
  // Table 1's order: the baselines, then TALLRec. A field that differs between the LLM's
  // settings only does not label the baseline's row.
  EXPECT_EQ(t.rows[0].setting, "SASRec");
  EXPECT_EQ(t.rows[2].setting, "TALLRec, lr=0.0001");
  EXPECT_EQ(t.rows[4].setting, "TALLRec, lr=0.0003");
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["llama-7b (lr=0.0003)"]["0"]["16"], 0.7);
  EXPECT_EQ(t.tallrec_json["movie"]["movie"]["SASRec"]["0"]["16"], 0.8);
  // One method alone: no setting, and the baseline is still named in TALLRec's layout.
  ResultsTable one = build_results_table({outcome("movie", 16, 0, 0.8, 0.5, baseline("caser")),
                                          outcome("movie", 16, 1, 0.6, 0.5, baseline("caser"))});
  EXPECT_TRUE(one.setting_fields.empty());
  ASSERT_EQ(one.rows.size(), 1u);
  EXPECT_EQ(one.rows[0].setting, "");
  EXPECT_EQ(one.tallrec_json["movie"]["movie"]["Caser"]["1"]["16"], 0.6);
  // A method this build does not know (a newer coordinator's store) keeps its name, and goes last.
  ResultsTable later = build_results_table({outcome("movie", 16, 0, 0.8, 0.5, baseline("bert4rec")),
                                            outcome("movie", 16, 0, 0.6, 0.5, baseline("caser"))});
  ASSERT_EQ(later.rows.size(), 2u);
  EXPECT_EQ(later.rows[0].setting, "Caser");
  EXPECT_EQ(later.rows[1].setting, "bert4rec");
}

TEST(Results, SampleColumnsComeFromTheRuns) {
  ResultsTable t =
      build_results_table({outcome("movie", 16, 0, 0.6, 0.5), outcome("movie", 256, 0, 0.7, 0.5)});
  EXPECT_EQ(t.samples, (std::vector<int64_t>{16, 256}));
  nlohmann::json j = results_table_json(t);
  EXPECT_EQ(j["cells"][0][1]["succeeded"], 1);
  EXPECT_TRUE(j["cells"][0][1]["std"].is_null());
}

}  // namespace
}  // namespace tallrec
