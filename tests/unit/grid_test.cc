#include "coordinator/grid.h"

#include <set>

#include "common/baseline_spec.h"
#include "common/error.h"
#include "common/run_spec.h"
#include "common/spec_enums.h"
#include "grid_text.h"
#include "test_paths.h"

namespace tallrec {
namespace {
using test::grid_text;

TEST(Grid, ExpandsTheCartesianProductWithStableKeys) {
  Grid g = parse_grid(
      grid_text("g", "[16, 64, 256]", R"(, "hyper": {"lr": [0.0001, 0.0003], "lora_r": [8, 16]})"),
      "g.json");
  EXPECT_EQ(g.runs.size(), 2u * 3 * 2 * 2 * 2);
  std::set<std::string> keys;
  for (const auto& r : g.runs) keys.insert(r.key);
  EXPECT_EQ(keys.size(), g.runs.size());
  Grid again = parse_grid(grid_text("other-name", "[16, 64, 256]",
                                    R"(, "hyper": {"lr": [0.0001, 0.0003], "lora_r": [8, 16]})"),
                          "g.json");
  EXPECT_EQ(again.runs.front().key, g.runs.front().key)
      << "a run's key depends on its spec, not on the sweep";
  EXPECT_EQ(g.runs.front().spec["tests"],
            (nlohmann::json{{"movie", "ms"}}));      // own domain by default
  EXPECT_EQ(g.runs.front().spec["lora_alpha"], 16);  // TALLRec's default
}

TEST(Grid, OptionalRecipeAxesLeaveOtherGridsKeysAlone) {
  // dtype, gradient_checkpointing, group_by_length and data_order appear in a run's spec only
  // when the grid names them, so adding these axes changed no existing run's key.
  Grid plain = parse_grid(grid_text("g", "[16]"), "g.json");
  for (const char* key : {"dtype", "gradient_checkpointing", "group_by_length", "data_order"})
    EXPECT_FALSE(plain.runs.front().spec.contains(key)) << key;
  Grid recipe = parse_grid(
      grid_text("g", "[16]",
                R"(, "hyper": {"dtype": ["bfloat16", "float16"], "data_order": ["seeded"]})"),
      "g.json");
  EXPECT_EQ(recipe.runs.size(), 2u * plain.runs.size());
  EXPECT_EQ(recipe.runs.front().spec["dtype"], "bfloat16");
  EXPECT_EQ(recipe.runs.front().spec["data_order"], "seeded");
  EXPECT_NE(recipe.runs.front().key, plain.runs.front().key);
}

TEST(Grid, InstructRecipeTakesThePaperScriptsMicroBatchUnlessNamed) {
  Grid paper = parse_grid(
      grid_text("g", "[16]", R"(, "hyper": {"recipe": ["finetune_rec", "instruct_7b"]})"),
      "g.json");
  ASSERT_EQ(paper.runs.size(), 8u);   // 2 domains x 2 seeds x 2 recipes
  for (const auto& run : paper.runs)  // finetune_rec.py's default, shell/instruct_7B.sh's
    EXPECT_EQ(run.spec["micro_batch_size"], run.spec["recipe"] == "instruct_7b" ? 64 : 32)
        << run.spec.dump();
  Grid named = parse_grid(
      grid_text("g", "[16]", R"(, "hyper": {"recipe": ["instruct_7b"], "micro_batch_size": [16]})"),
      "g.json");
  EXPECT_EQ(named.runs[0].spec["micro_batch_size"], 16);
}

TEST(Grid, MalformedGridsNameTheField) {
  auto error_of = [](const std::string& text) {
    try {
      parse_grid(text, "g.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{").find("g.json: malformed JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"name": 1e999})").find("g.json: malformed JSON"),
            std::string::npos);  // out_of_range, found by fuzzing
  std::string many = "[";
  for (int k = 1; k <= 400; ++k) many += (k > 1 ? "," : "") + std::to_string(k);
  many += "]";
  EXPECT_NE(error_of(grid_text("g", many, R"(, "seeds": [)" + many.substr(1)))
                .find("expands to 320000 runs; a grid may have at most 100000"),
            std::string::npos);
  EXPECT_NE(error_of(grid_text("g", "[]")).find("\"samples\" must be a non-empty list"),
            std::string::npos);
  EXPECT_NE(error_of(grid_text("g", "[0]")).find("samples: 0 must be -1 or a positive count"),
            std::string::npos);
  EXPECT_NE(error_of(grid_text("g", "[16]", R"(, "hyper": {"momentum": [1]})"))
                .find("unknown hyper-parameter \"momentum\""),
            std::string::npos);
  EXPECT_NE(error_of(grid_text("g", "[16]", R"(, "test_domains": ["games"])"))
                .find("test_domains: \"games\" is not in datasets"),
            std::string::npos);
  EXPECT_NE(error_of(grid_text("g", "[16]", R"(, "hyper": {"dtype": ["fp8"]})"))
                .find("hyper.dtype: \"fp8\" is not one of"),
            std::string::npos);
}

// The LLM's hyper axes multiply the LLM's runs only: a baseline run holds only what a baseline
// uses, so two learning rates make one baseline run per point, not two that train the same.
// The grid's `baselines` settings go into every baseline run, checked as the trainer checks them.
TEST(Grid, BaselineRunsAreNotMultipliedByTheLlmsAxesAndCarryTheGridsBaselineSettings) {
  const Grid g = parse_grid(test::movie_grid({{"methods", {"llm", "caser"}},
                                              {"hyper", {{"lr", {1e-4, 3e-4}}}},
                                              {"baselines", {{"hidden_size", 32}, {"epochs", 50}}}})
                                .dump(),
                            "g.json");
  size_t llm = 0, caser = 0;
  const Grid without = parse_grid(
      test::movie_grid({{"methods", {"llm", "caser"}}, {"hyper", {{"lr", {1e-4, 3e-4}}}}}).dump(),
      "g.json");
  for (size_t i = 0; i < g.runs.size(); ++i) {
    const GridRun& r = g.runs[i];
    if (!r.spec.contains("method")) {
      ++llm;
      // The baselines' settings are none of the LLM's business: its runs keep their keys.
      EXPECT_FALSE(r.spec.contains("baseline") || r.spec.contains("baselines")) << r.spec.dump();
      EXPECT_EQ(r.key, without.runs[i].key);
      continue;
    }
    ++caser;
    EXPECT_EQ(r.spec["baseline"], (nlohmann::json{{"hidden_size", 32}, {"epochs", 50}}));
  }
  EXPECT_EQ(llm, 2 * caser);
  EXPECT_EQ(caser, 2u);  // movie x 1 sample x 2 seeds
  // A whole float where an integer belongs is that integer (JSON Schema's "integer" takes 32.0).
  const Grid floats =
      parse_grid(test::movie_grid(
                     {{"methods", {"caser"}}, {"baselines", {{"hidden_size", 32.0}, {"lr", 0.01}}}})
                     .dump(),
                 "g.json");
  EXPECT_EQ(floats.runs[0].spec["baseline"], (nlohmann::json{{"hidden_size", 32}, {"lr", 0.01}}));
  // SASRec's heads must divide the hidden size, but only a grid with SASRec or DROS says so.
  EXPECT_NO_THROW(parse_grid(
      test::movie_grid({{"methods", {"caser"}}, {"baselines", {{"hidden_size", 7}}}}).dump(),
      "g.json"));
  EXPECT_THROW(parse_grid(test::movie_grid(
                              {{"methods", {"caser", "dros"}}, {"baselines", {{"hidden_size", 7}}}})
                              .dump(),
                          "g.json"),
               InputError);
  // A setting written at its default is no setting: the same runs, the same keys.
  const Grid at_default = parse_grid(
      test::movie_grid({{"methods", {"caser"}}, {"baselines", {{"lr", 0.001}, {"epochs", 200}}}})
          .dump(),
      "g.json");
  const Grid plain = parse_grid(test::movie_grid({{"methods", {"caser"}}}).dump(), "g.json");
  ASSERT_EQ(at_default.runs.size(), plain.runs.size());
  for (size_t i = 0; i < plain.runs.size(); ++i)
    EXPECT_EQ(at_default.runs[i].key, plain.runs[i].key);

  auto refusal = [](const nlohmann::json& baselines) {
    try {
      parse_grid(test::movie_grid({{"methods", {"sasrec"}}, {"baselines", baselines}}).dump(),
                 "g.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refusal({{"dropout", 1.5}}).find("g.json: baselines: \"dropout\": 1.5 must be"),
            std::string::npos)
      << refusal({{"dropout", 1.5}});
  EXPECT_NE(refusal({{"seed", 3}}).find("baselines: \"seed\" is the run's or the worker's"),
            std::string::npos);
  EXPECT_NE(refusal({{"hiden_size", 3}}).find("unknown field \"hiden_size\""), std::string::npos);
  EXPECT_NE(refusal(3).find("field \"baselines\" must be an object"), std::string::npos);
}

TEST(Grid, MethodsMultiplyTheRunsAndLeaveTheLlmsRunsAsTheyWere) {
  const std::string cross = R"(, "test_domains": ["movie", "book"])";
  const Grid plain = parse_grid(grid_text("g", "[16, 64]", cross), "g.json");
  const Grid with = parse_grid(
      grid_text("g", "[16, 64]", cross + R"(, "methods": ["llm", "sasrec", "gru4rec"])"), "g.json");
  ASSERT_EQ(with.runs.size(), 3 * plain.runs.size());  // 2 domains x 2 samples x 2 seeds x 3
  // The odometer: domain x sample x seed x method, the method turning fastest of the four.
  EXPECT_FALSE(with.runs[0].spec.contains("method"));
  EXPECT_EQ(with.runs[1].spec["method"], "sasrec");
  EXPECT_EQ(with.runs[2].spec["method"], "gru4rec");
  EXPECT_EQ(with.runs[3].seed, 1u);
  // The LLM's runs are the grid-without-methods' runs, spec for spec and key for key.
  std::vector<GridRun> llm;
  for (const auto& r : with.runs)
    if (!r.spec.contains("method")) llm.push_back(r);
  ASSERT_EQ(llm.size(), plain.runs.size());
  for (size_t i = 0; i < llm.size(); ++i) {
    EXPECT_EQ(llm[i].key, plain.runs[i].key);
    EXPECT_EQ(llm[i].spec, plain.runs[i].spec);
    EXPECT_EQ(llm[i].spec["tests"], (nlohmann::json{{"movie", "ms"}, {"book", "bs"}}));
  }
  // `"methods": ["llm"]` is the default, written out.
  const Grid only_llm =
      parse_grid(grid_text("g", "[16, 64]", cross + R"(, "methods": ["llm"])"), "g.json");
  ASSERT_EQ(only_llm.runs.size(), plain.runs.size());
  for (size_t i = 0; i < plain.runs.size(); ++i) EXPECT_EQ(only_llm.runs[i].key, plain.runs[i].key);
  // A baseline names its method and is tested on its own domain only, whatever test_domains says.
  std::set<std::string> keys;
  for (const auto& r : with.runs) {
    keys.insert(r.key);
    if (!r.spec.contains("method")) continue;
    EXPECT_TRUE(r.spec["method"] == "sasrec" || r.spec["method"] == "gru4rec") << r.spec.dump();
    EXPECT_EQ(r.spec["tests"], (nlohmann::json{{r.domain, r.domain == "movie" ? "ms" : "bs"}}))
        << r.spec.dump();
    EXPECT_FALSE(r.spec.contains("base_model")) << "a baseline uses no base model";
    EXPECT_FALSE(r.spec.contains("lr")) << "nor the LLM's hyper axes";
  }
  EXPECT_EQ(keys.size(), with.runs.size());
  EXPECT_EQ(spec_method(with.runs[0].spec, "run"), Method::kLlm);
  EXPECT_EQ(spec_method(with.runs[1].spec, "run"), Method::kSasRec);
  // Every method, and the bound counts them.
  const Grid all =
      parse_grid(test::movie_grid({{"methods", enum_names<Method>()}}).dump(), "g.json");
  EXPECT_EQ(all.runs.size(), 2 * enum_names<Method>().size());
  std::string many = "[";  // 2 domains x 160 samples x 160 seeds: 51,200 runs, x 2 methods
  for (int k = 1; k <= 160; ++k) many += (k > 1 ? "," : "") + std::to_string(k);
  many += "]";
  try {
    parse_grid(grid_text("g", many, R"(, "seeds": )" + many + R"(, "methods": ["llm", "caser"])"),
               "g.json");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expands to 102400 runs"), std::string::npos) << e.what();
  }
}

TEST(Grid, MethodsRefusalsNameTheFieldAndTheValue) {
  auto error_of = [](const nlohmann::json& methods) {
    try {
      parse_grid(test::movie_grid({{"methods", methods}}).dump(), "g.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({"llm", "bert4rec"}),
            "g.json: methods: \"bert4rec\" is not a method (expected llm, gru4rec, caser, sasrec "
            "or dros)");
  EXPECT_EQ(error_of({"LLM"}),
            "g.json: methods: \"LLM\" is not a method (expected llm, gru4rec, caser, sasrec or "
            "dros)");
  EXPECT_EQ(error_of({"sasrec", "llm", "sasrec"}), "g.json: methods: \"sasrec\" is listed twice");
  EXPECT_EQ(error_of(nlohmann::json::array()),
            "g.json: field \"methods\" must be a non-empty list");
  EXPECT_EQ(error_of("sasrec"), "g.json: field \"methods\" must be a non-empty list");
  EXPECT_EQ(error_of(nlohmann::json::object()),
            "g.json: field \"methods\" must be a non-empty list");
  EXPECT_EQ(error_of({"llm", 1}), "g.json: methods: 1 is not a method name");
  EXPECT_EQ(error_of(nlohmann::json::parse(R"([["llm"]])")),
            "g.json: methods: [\"llm\"] is not a method name");
  EXPECT_EQ(error_of({nullptr}), "g.json: methods: null is not a method name");
  EXPECT_EQ(error_of({"sasrec"}), "no error");
}

TEST(Grid, AWholeFloatWhereAnIntegerBelongsIsThatInteger) {
  // JSON Schema (the OpenAPI document's grid) counts 16.0 an integer; a client may send it.
  const Grid g = parse_grid(
      grid_text("f", "[16.0]", R"(, "max_attempts": 2.0, "hyper": {"lora_r": [8.0], "lr": [1.0]})"),
      "f.json");
  ASSERT_FALSE(g.runs.empty());
  EXPECT_TRUE(g.runs[0].spec["sample"].is_number_integer());
  EXPECT_EQ(g.runs[0].spec["sample"], 16);
  EXPECT_TRUE(g.runs[0].spec["lora_r"].is_number_integer());
  EXPECT_TRUE(g.runs[0].spec["lr"].is_number_float()) << "float fields stay as written";
  EXPECT_EQ(g.max_attempts, 2);
  EXPECT_THROW(parse_grid(grid_text("f", "[16.5]"), "f.json"), InputError);
  EXPECT_THROW(parse_grid(grid_text("f", "[1e300]"), "f.json"), InputError);
}

}  // namespace
}  // namespace tallrec
