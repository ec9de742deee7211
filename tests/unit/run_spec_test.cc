// The run spec's field table: every field written and read back, its choice fields' names equal
// the schema's, and a spec from outside refused with the field it got wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/error.h"
#include "common/run_spec.h"
#include "test_paths.h"

namespace tallrec {
namespace {

nlohmann::json minimal_spec() {
  return {{"base_model", "/m"}, {"train_tokens", "/t"}, {"valid_tokens", "/v"}};
}

// The InputError message parse_run_spec gives for `spec`, or "" when it parses.
std::string refusal(const nlohmann::json& spec) {
  try {
    parse_run_spec(spec.dump(), "spec.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(RunSpec, EveryFieldSurvivesJsonAndBack) {
  RunSpec s;
  s.recipe = Recipe::kInstruct7b;
  s.eval_at_end = true;
  s.base_model = "/models/llama";
  s.init_adapter = "/adapters/alpaca";
  s.train_tokens = "/tok/train";
  s.valid_tokens = "/tok/valid";
  s.test_tokens = {{"movie", "/tok/movie"}, {"book", "/tok/book"}};
  s.seed = 7;
  s.data_order = DataOrder::kSeeded;
  s.data_seed = 9;
  s.lora = {16, 32, 0.1, {"q_proj", "k_proj"}};
  s.optim = {2e-4, 0.01, 0.8, 0.99, 1e-6};
  s.warmup_steps = 3;
  s.max_grad_norm = 0.5;
  s.batch_size = 64;
  s.micro_batch_size = 8;
  s.epochs = 4;
  s.max_steps = 30;
  s.eval_every = 5;
  s.early_stopping_patience = 2;
  s.eval_batch_size = 12;
  s.group_by_length = true;
  s.gradient_checkpointing = true;
  s.dtype = Dtype::kFloat16;
  s.loss_scale_init = 1024;
  s.scoring = Scoring::kLogitDiff;
  s.loss_normalization = LossNormalization::kTokenMean;
  s.threads = 3;
  s.world_size = 2;
  s.device = "cuda";
  s.memory_limit_gib = 20;
  const nlohmann::json written = run_spec_json(s);
  EXPECT_EQ(written["dtype"], "float16");
  EXPECT_EQ(written["lora"]["r"], 16);
  EXPECT_EQ(run_spec_json(parse_run_spec(written.dump(), "spec.json")), written);
  // A field the table forgot would come back as its default: no default may equal the value
  // above, so every field is really written and read.
  const nlohmann::json defaults = run_spec_json(RunSpec{});
  for (auto& [key, value] : written.items()) {
    if (value.is_object() && key != "test_tokens") {
      for (auto& [inner, v] : value.items())
        EXPECT_NE(v, defaults[key][inner]) << key << "." << inner;
    } else {
      EXPECT_NE(value, defaults[key]) << key;
    }
  }
}

// The names a choice field takes are written once (common/spec_enums.h); the schema that
// documents the spec lists the same.
TEST(RunSpec, ChoiceFieldsNameWhatTheSchemaLists) {
  std::ifstream in(std::string(TALLREC_SOURCE_DIR) + "/schemas/run_spec.schema.json");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json p = nlohmann::json::parse(text.str()).at("properties");
  EXPECT_EQ(p["recipe"]["enum"], nlohmann::json(enum_names<Recipe>()));
  EXPECT_EQ(p["data_order"]["enum"], nlohmann::json(enum_names<DataOrder>()));
  EXPECT_EQ(p["dtype"]["enum"], nlohmann::json(enum_names<Dtype>()));
  EXPECT_EQ(p["scoring"]["enum"], nlohmann::json(enum_names<Scoring>()));
  EXPECT_EQ(p["loss_normalization"]["enum"], nlohmann::json(enum_names<LossNormalization>()));
}

TEST(RunSpec, TheRecipeSetsDefaultsTheSpecsOwnFieldsOverride) {
  nlohmann::json j = minimal_spec();
  j["recipe"] = "instruct_7b";
  RunSpec s = parse_run_spec(j.dump(), "spec.json");
  EXPECT_EQ(s.micro_batch_size, 64);
  EXPECT_TRUE(s.gradient_checkpointing);
  j["micro_batch_size"] = 16;
  j["gradient_checkpointing"] = false;
  s = parse_run_spec(j.dump(), "spec.json");
  EXPECT_EQ(s.micro_batch_size, 16);
  EXPECT_FALSE(s.gradient_checkpointing);
}

TEST(RunSpec, RefusesNamingTheFieldItGotWrong) {
  EXPECT_EQ(refusal(minimal_spec()), "");
  auto with = [](const char* key, nlohmann::json value) {
    nlohmann::json j = minimal_spec();
    j[key] = std::move(value);
    return j;
  };
  EXPECT_EQ(refusal(with("dtype", "fp8")),
            "spec.json: unknown dtype \"fp8\" (expected float32, bfloat16 or float16)");
  EXPECT_EQ(refusal(with("recipe", "alpaca")),
            "spec.json: unknown recipe \"alpaca\" (expected finetune_rec or instruct_7b)");
  EXPECT_EQ(refusal(with("data_order", 1)),
            "spec.json: field \"data_order\" has the wrong type or range");
  EXPECT_EQ(refusal(with("seed", -1)), "spec.json: field \"seed\" has the wrong type or range");
  EXPECT_EQ(refusal(with("lora", {{"r", "8"}})),
            "spec.json: field \"lora.r\" has the wrong type or range");
  EXPECT_EQ(refusal(with("epoch", 3)), "spec.json: unknown field \"epoch\"");
  // A misspelt field inside a group was once ignored, and the run trained with the default.
  EXPECT_EQ(refusal(with("lora", {{"rank", 16}})), "spec.json: unknown field \"lora.rank\"");
  EXPECT_EQ(refusal(with("optim", {{"learning_rate", 1e-3}})),
            "spec.json: unknown field \"optim.learning_rate\"");
  EXPECT_EQ(refusal(with("optim", 0.001)), "spec.json: field \"optim\" must be an object");
  nlohmann::json missing = minimal_spec();
  missing.erase("valid_tokens");
  EXPECT_EQ(refusal(missing), "spec.json: missing field \"valid_tokens\"");
}

}  // namespace
}  // namespace tallrec
