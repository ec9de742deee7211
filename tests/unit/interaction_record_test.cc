#include "jobs/data/interaction_record.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "input_error_matcher.h"

namespace tallrec {
namespace {

TEST(InteractionRecords, PathSitsBesideThePromptFile) {
  EXPECT_EQ(interactions_path_for("out/movie/train.json"), "out/movie/train.interactions.jsonl");
  EXPECT_EQ(interactions_path_for("records"), "records.interactions.jsonl");
}

TEST(InteractionRecords, RoundTripWritesRatingsAsTheFilesHadThem) {
  std::vector<InteractionRecord> records = {
      {"196", {"242", "302"}, {3, 4}, "377", 1, 0},
      {"u2", {"0195153448"}, {7.5}, "0002005018", 8, 1},
  };
  const std::string text = interaction_records_to_jsonl(records);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            R"({"user":"196","history":["242","302"],"history_ratings":[3,4],"target":"377",)"
            R"("target_rating":1,"label":0})");
  const auto back = parse_interaction_records(text, "x.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].history, std::vector<std::string>{"0195153448"});
  EXPECT_EQ(back[1].history_ratings, std::vector<double>{7.5});
  EXPECT_EQ(back[1].target, "0002005018");
  EXPECT_EQ(back[1].label, 1);
}

void expect_refused(const std::string& text, const std::string& needle) {
  test::expect_input_error([&] { parse_interaction_records(text, "train.interactions.jsonl"); },
                           needle);
}

TEST(InteractionRecords, BadLinesAreRefusedNamingTheLine) {
  const std::string good =
      R"({"user":"1","history":["2"],"history_ratings":[3],"target":"4","target_rating":5,"label":1})"
      "\n";
  expect_refused(good + "[1]\n", "train.interactions.jsonl:2: expected a JSON object");
  expect_refused(good + good + "{\"user\":1}\n", "train.interactions.jsonl:3: \"user\" must be");
  expect_refused(
      R"({"user":"1","history":["2","3"],"history_ratings":[3],"target":"4","target_rating":5,"label":1})",
      ":1: \"history\" has 2 items but \"history_ratings\" 1");
  expect_refused(
      R"({"user":"1","history":[],"history_ratings":[],"target":"4","target_rating":5,"label":2})",
      ":1: \"label\" must be 0 or 1");
  expect_refused(R"({"user":"1","history":[],"history_ratings":[],"target_rating":5,"label":1})",
                 ":1: no \"target\"");
  expect_refused("{\"user\":", "train.interactions.jsonl:1");
}

}  // namespace
}  // namespace tallrec
