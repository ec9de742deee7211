#include "jobs/data/baseline_inputs.h"

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "input_error_matcher.h"
#include "test_paths.h"

namespace tallrec {
namespace {

const std::vector<InteractionRecord> kTrain = {
    {"u1", {"a", "b", "c"}, {5, 1, 4}, "d", 4, 1},
    {"u2", {"c"}, {2}, "a", 1, 0},
};
const std::vector<InteractionRecord> kValid = {{"u3", {"e", "a"}, {3, 3}, "b", 5, 1}};

TEST(BaselineInputs, NumbersIdsInOrderOfFirstAppearanceAndKeepsTheLastItems) {
  const InteractionEncoder encoder({&kTrain, &kValid}, 2);
  EXPECT_EQ(encoder.items(), 6);  // a b c d e, and padding 0
  EXPECT_EQ(encoder.users(), 4);
  const EncodedSplit s = encoder.encode(kTrain, "train");
  EXPECT_EQ(s.user, (std::vector<int64_t>{1, 2}));
  // u1's last two of a b c (2 3); u2's one item right-padded.
  EXPECT_EQ(s.history, (std::vector<int64_t>{2, 3, 3, 0}));
  EXPECT_EQ(s.history_length, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(s.target, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(s.label, (std::vector<int64_t>{1, 0}));
  const std::vector<InteractionRecord> stranger = {{"u9", {"a"}, {1}, "a", 1, 0}};
  EXPECT_THROW(encoder.encode(stranger, "x"), InputError);
}

TEST(BaselineInputs, FileRoundTripsAndBadIdsAreRefused) {
  const InteractionEncoder encoder({&kTrain, &kValid}, 3);
  BaselineInputs in;
  in.items = encoder.items();
  in.users = encoder.users();
  in.max_history = encoder.max_history();
  in.train = encoder.encode(kTrain, "train");
  in.valid = encoder.encode(kValid, "valid");
  in.tests["movie"] = in.valid;
  test::ScratchDir dir;
  nlohmann::json doc = baseline_inputs_json(in);
  write_file_atomically(dir / "in.json", doc.dump());
  const BaselineInputs back = read_baseline_inputs(dir / "in.json");
  EXPECT_EQ(back.train.history, in.train.history);
  EXPECT_EQ(back.tests.at("movie").target, in.valid.target);

  auto expect_refused = [&](nlohmann::json bad, const std::string& needle) {
    write_file_atomically(dir / "bad.json", bad.dump());
    test::expect_input_error([&] { read_baseline_inputs(dir / "bad.json"); }, needle);
  };
  nlohmann::json bad = doc;
  bad["train"]["target"][1] = 99;
  expect_refused(bad, "train: record 1: target id out of range");
  bad = doc;
  bad["valid"]["history"][0][2] = 1;  // past history_length 2: must be padding
  expect_refused(bad, "valid: record 0: history id 1 at 2 must be 0 (padding)");
  bad = doc;
  bad["train"]["label"][0] = 2;
  expect_refused(bad, "train: record 0: label must be 0 or 1");
  bad = doc;
  bad["tests"] = nlohmann::json::object();
  expect_refused(bad, "\"tests\" must name at least one test set");
}

}  // namespace
}  // namespace tallrec
