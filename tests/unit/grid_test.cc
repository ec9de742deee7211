#include "coordinator/grid.h"

#include <set>

#include "common/error.h"
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
