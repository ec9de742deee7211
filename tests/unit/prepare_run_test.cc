#include "worker/prepare_run.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "coordinator/grid.h"
#include "grid_text.h"
#include "jobs/data/token_cache.h"
#include "jobs/data/token_file.h"
#include "test_paths.h"

namespace tallrec {
namespace {

const PromptRecord kYes{"Say it.", "User Preference: \"A\"", "Yes."};
const PromptRecord kNo{"Say it.", "User Preference: \"B\"", "No."};

// A one-domain grid over the four records of train.json (valid.json validates and tests), sample
// 2, seed 5, with these hyper axes.
nlohmann::json movie_grid(const test::ScratchDir& dir, const nlohmann::json& hyper) {
  return test::movie_grid({{"name", "p"},
                           {"datasets",
                            {{"movie",
                              {{"train", (dir / "train.json").string()},
                               {"valid", (dir / "valid.json").string()},
                               {"test", (dir / "valid.json").string()}}}}},
                           {"samples", {2}},
                           {"seeds", {5}},
                           {"hyper", hyper}});
}

TEST(TokenCache, SameDataSameFolderChangedDataNewFolder) {
  test::ScratchDir dir;
  Tokenizer tok(test::tokenizer_model());
  write_prompt_records(dir / "r.json", {kYes, kNo, kYes});
  auto first = cached_tokens(tok, dir / "r.json", {}, std::nullopt, dir / "cache");
  const auto stamp = std::filesystem::last_write_time(first / "tokens.bin");
  EXPECT_EQ(cached_tokens(tok, dir / "r.json", {}, std::nullopt, dir / "cache"), first);
  EXPECT_EQ(std::filesystem::last_write_time(first / "tokens.bin"), stamp)
      << "reused, not rewritten";
  EXPECT_NE(cached_tokens(tok, dir / "r.json", {}, FewShotSubset{2, 0}, dir / "cache"), first);
  write_prompt_records(dir / "r.json", {kNo, kNo, kYes});
  EXPECT_NE(cached_tokens(tok, dir / "r.json", {}, std::nullopt, dir / "cache"), first);
}

TEST(PrepareRun, GridRunBecomesATrainerSpec) {
  test::ScratchDir dir;
  Tokenizer tok(test::tokenizer_model());
  write_prompt_records(dir / "train.json", {kYes, kNo, kYes, kNo});
  write_prompt_records(dir / "valid.json", {kYes, kNo});
  nlohmann::json g = movie_grid(dir, {{"lr", {0.0003}}});
  const auto run = parse_grid(g.dump(), "p").runs.at(0).spec;
  auto spec = nlohmann::json::parse(
      read_file(prepare_run(run, tok, dir / "cache", dir / "run", {{"max_steps", 3}})));
  EXPECT_EQ(spec["optim"]["lr"], 0.0003);
  EXPECT_EQ(spec["lora"]["r"], 8);
  EXPECT_EQ(spec["seed"], 5);
  EXPECT_EQ(spec["max_steps"], 3);
  TokenizedDataset train(spec["train_tokens"].get<std::string>());
  EXPECT_EQ(train.size(), 2u);
  EXPECT_TRUE(train.meta().few_shot);
  EXPECT_EQ(train.meta().seed, 5u);
  EXPECT_EQ(TokenizedDataset(spec["test_tokens"]["movie"].get<std::string>()).size(), 2u);

  // test_sample: a seeded subset of each test set, the same whatever the run's seed.
  g["test_sample"] = 1;
  const auto sampled = parse_grid(g.dump(), "p").runs.at(0).spec;
  auto sspec =
      nlohmann::json::parse(read_file(prepare_run(sampled, tok, dir / "cache", dir / "run")));
  TokenizedDataset test(sspec["test_tokens"]["movie"].get<std::string>());
  EXPECT_EQ(test.size(), 1u);
  EXPECT_EQ(test.meta().seed, 0u);
  g.erase("test_sample");
  g["test_sample"] = 0;
  EXPECT_THROW(parse_grid(g.dump(), "p"), InputError);
  g.erase("test_sample");
  EXPECT_FALSE(spec.contains("dtype"));  // CPU: the trainer's float32

  // A GPU slot: bfloat16 unless the grid chose a dtype; the grid's recipe axes pass through.
  auto gpu = nlohmann::json::parse(
      read_file(prepare_run(run, tok, dir / "cache", dir / "run", {{"device", "cuda"}})));
  EXPECT_EQ(gpu["device"], "cuda");
  EXPECT_EQ(gpu["dtype"], "bfloat16");
  g["hyper"] = {{"dtype", {"float16"}}, {"gradient_checkpointing", {true}}};
  const auto chosen = parse_grid(g.dump(), "p").runs.at(0).spec;
  gpu = nlohmann::json::parse(
      read_file(prepare_run(chosen, tok, dir / "cache", dir / "run", {{"device", "cuda"}})));
  EXPECT_EQ(gpu["dtype"], "float16");
  EXPECT_EQ(gpu["gradient_checkpointing"], true);

  // A grid may ask for TALLRec's pinned BOS = EOS = 0 (--special-ids decapoda): its own cache
  // folder, and the trainer's tokens carry them; the default leaves run keys as they were.
  EXPECT_FALSE(run.contains("special_ids"));
  g["hyper"] = nlohmann::json::object();
  g["special_ids"] = "decapoda";
  const auto decapoda = parse_grid(g.dump(), "p").runs.at(0).spec;
  auto dspec =
      nlohmann::json::parse(read_file(prepare_run(decapoda, tok, dir / "cache", dir / "run")));
  TokenizedDataset dtrain(dspec["train_tokens"].get<std::string>());
  EXPECT_EQ(dtrain.meta().bos_id, 0);
  EXPECT_EQ(dtrain.meta().eos_id, 0);
  EXPECT_EQ(dtrain.train_ids(0)[0], 0);
  EXPECT_NE(dspec["train_tokens"], spec["train_tokens"]);
  EXPECT_EQ(TokenizedDataset(spec["train_tokens"].get<std::string>()).meta().bos_id, 1);
  g["special_ids"] = "hf";
  EXPECT_THROW(parse_grid(g.dump(), "p"), InputError);

  // Overrides (jobs/data/special_ids.h): pad and EOS of the grid's choosing, a cache of their own.
  g["special_ids"] = "llama,eos=13,pad=3";
  const auto over = parse_grid(g.dump(), "p").runs.at(0).spec;
  auto ospec = nlohmann::json::parse(read_file(prepare_run(over, tok, dir / "cache", dir / "run")));
  TokenizedDataset otrain(ospec["train_tokens"].get<std::string>());
  EXPECT_EQ(otrain.meta().bos_id, 1);
  EXPECT_EQ(otrain.meta().eos_id, 13);
  EXPECT_EQ(otrain.meta().pad_id, 3);
  EXPECT_NE(ospec["train_tokens"], spec["train_tokens"]);
  for (const char* bad : {"llama,pad", "llama,eos=none", "", "llama,bos=1x"}) {
    g["special_ids"] = bad;
    try {
      parse_grid(g.dump(), "p");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("special_ids"), std::string::npos) << e.what();
    }
  }
  g["special_ids"] = nlohmann::json::array({"llama"});
  EXPECT_THROW(parse_grid(g.dump(), "p"), InputError);
  g.erase("special_ids");

  // TALLRec's oddities are the default; a grid may ask for the clean ways: the prompt without
  // "# noqa: E501", the loss on the answer only (both tokenized so, in a cache of their own) and
  // the logit difference as the score.
  EXPECT_EQ(train.meta().prompt_template, "tallrec");
  EXPECT_TRUE(train.meta().train_on_inputs);
  EXPECT_EQ(spec.value("scoring", "tallrec"), "tallrec");
  g["hyper"] = {{"template", {"clean"}}, {"train_on_inputs", {false}}, {"scoring", {"logit_diff"}}};
  const auto clean = parse_grid(g.dump(), "p").runs.at(0).spec;
  auto cspec =
      nlohmann::json::parse(read_file(prepare_run(clean, tok, dir / "cache", dir / "run")));
  TokenizedDataset ctrain(cspec["train_tokens"].get<std::string>());
  EXPECT_EQ(ctrain.meta().prompt_template, "clean");
  EXPECT_FALSE(ctrain.meta().train_on_inputs);
  EXPECT_EQ(cspec["scoring"], "logit_diff");
  EXPECT_NE(cspec["train_tokens"], spec["train_tokens"]);
  g["hyper"] = {{"template", {"alpaca"}}};
  EXPECT_THROW(parse_grid(g.dump(), "p"), InputError);
}

// The pre-flight and the dashboard read a run's settings from resolved_trainer_settings(); the
// trainer reads the spec the worker wrote. They must agree for every recipe and axis (each
// default and recipe value is written once, in common/run_spec.*).
TEST(PrepareRun, ResolvedSettingsAreWhatTheTrainerReads) {
  test::ScratchDir dir;
  Tokenizer tok(test::tokenizer_model());
  write_prompt_records(dir / "train.json", {kYes, kNo, kYes, kNo});
  write_prompt_records(dir / "valid.json", {kYes, kNo});
  const std::vector<nlohmann::json> hypers = {
      nlohmann::json::object(),
      {{"recipe", {"instruct_7b"}}, {"batch_size", {128}}},
      {{"recipe", {"instruct_7b"}}, {"micro_batch_size", {32}}, {"batch_size", {128}}},
      {{"lora_r", {4}},
       {"lora_alpha", {8}},
       {"target_modules", nlohmann::json::array({nlohmann::json::array({"q_proj", "k_proj"})})},
       {"dtype", {"float16"}},
       {"gradient_checkpointing", {true}},
       {"data_order", {"seeded"}}}};
  for (const auto& hyper : hypers) {
    const nlohmann::json g = movie_grid(dir, hyper);
    const auto run = parse_grid(g.dump(), "p").runs.at(0).spec;
    nlohmann::json trainer =
        run_spec_json(read_run_spec(prepare_run(run, tok, dir / "cache", dir / "run")));
    for (const char* key : {"train_tokens", "valid_tokens", "test_tokens"}) trainer.erase(key);
    EXPECT_EQ(resolved_trainer_settings(run), trainer) << hyper.dump();
  }
}

}  // namespace
}  // namespace tallrec
