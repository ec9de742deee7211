#include "jobs/data/movielens.h"

#include <map>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "common/text_encoding.h"
#include "test_paths.h"

namespace tallrec {
namespace {

const std::filesystem::path kRaw = test::shared_dir() / "data" / "ml-100k";

double yes_ratio(const std::vector<PromptRecord>& records) {
  double yes = 0;
  for (const auto& r : records) yes += answer_label(r) == 1;
  return yes / double(records.size());
}

TEST(MovieLens, CountsAndYesRatiosAreTallrecs) {
  Splits s = prepare_movielens(kRaw);
  EXPECT_EQ(s.train.size(), 8000u);
  EXPECT_EQ(s.valid.size(), 1000u);
  EXPECT_EQ(s.test.size(), 1000u);
  EXPECT_NEAR(yes_ratio(s.train), 0.5571, 5e-5);
  EXPECT_NEAR(yes_ratio(s.valid), 0.6580, 5e-5);
  EXPECT_NEAR(yes_ratio(s.test), 0.5280, 5e-5);
}

TEST(MovieLens, FilesAreByteIdenticalToTallrecsReleasedOnes) {
  test::ScratchDir out;
  write_splits(out.path(), prepare_movielens(kRaw));
  // SHA-256 of data/movie/valid.json and data/movie/test.json in SAI990323/TALLRec at
  // 5fb0ae562ec0ad555a4c075d072d29d2e1087ed1 (612,555 and 628,187 bytes).
  EXPECT_EQ(sha256_file(out / "test.json"), TALLREC_MOVIE_TEST_SHA256);
  EXPECT_EQ(sha256_file(out / "valid.json"), TALLREC_MOVIE_VALID_SHA256);
  // The first record of TALLRec's test.json, as released.
  const std::string expected_head =
      "[\n    {\n        \"instruction\": \"Given the user's preference and unpreference, identify "
      "whether "
      "the user will like the target movie by answering \\\"Yes.\\\" or \\\"No.\\\".\",\n        "
      "\"input\": "
      "\"User Preference: \\\"Paris, Texas (1984)\\\", \\\"Rebel Without a Cause (1955)\\\", "
      "\\\"Return of the Pi";
  EXPECT_EQ(read_file(out / "test.json").substr(0, expected_head.size()), expected_head);
}

// Record i of X.interactions.jsonl is the window behind prompt i of X.json: the same user's
// ratings in u.data, the target's title ends the prompt, the history's titles sit in the
// preference or unpreference list by their rating, and the labels agree.
TEST(MovieLens, InteractionsAreThePromptsRecordForRecord) {
  test::ScratchDir out;
  write_splits(out.path(), prepare_movielens(kRaw));
  std::vector<std::string> titles;
  const std::string items = read_file(kRaw / "u.item");
  for (size_t start = 0; start < items.size();) {
    size_t end = items.find('\n', start);
    const std::string line = items.substr(start, end - start);
    const size_t bar = line.find('|');
    titles.push_back(latin1_to_utf8(line.substr(bar + 1, line.find('|', bar + 1) - bar - 1)));
    start = end + 1;
  }
  std::map<std::pair<std::string, std::string>, double> rating_of;  // (user, movie) -> rating
  const std::string data = read_file(kRaw / "u.data");
  for (size_t start = 0; start < data.size();) {
    size_t end = data.find('\n', start);
    std::istringstream fields(data.substr(start, end - start));
    std::string user, movie;
    double rating = 0;
    fields >> user >> movie >> rating;
    rating_of[{user, movie}] = rating;
    start = end + 1;
  }
  for (const char* split : {"train", "valid", "test"}) {
    const auto prompts = read_prompt_records(out / (std::string(split) + ".json"));
    const auto interactions =
        read_interaction_records(out / (std::string(split) + ".interactions.jsonl"));
    ASSERT_EQ(prompts.size(), interactions.size()) << split;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto& p = prompts[i];
      const auto& r = interactions[i];
      SCOPED_TRACE(std::string(split) + " record " + std::to_string(i));
      ASSERT_EQ(r.history.size(), 10u);
      EXPECT_EQ(r.label, answer_label(p));
      EXPECT_EQ(r.label, r.target_rating > 3 ? 1 : 0);
      EXPECT_EQ(rating_of.at({r.user, r.target}), r.target_rating);
      const std::string ending =
          "the target movie \"" + titles.at(std::stoul(r.target) - 1) + "\"?";
      EXPECT_EQ(p.input.substr(p.input.size() - ending.size()), ending);
      const size_t unpreference = p.input.find("\nUser Unpreference: ");
      for (size_t k = 0; k < r.history.size(); ++k) {
        EXPECT_EQ(rating_of.at({r.user, r.history[k]}), r.history_ratings[k]);
        const size_t at = p.input.find("\"" + titles.at(std::stoul(r.history[k]) - 1) + "\"");
        ASSERT_NE(at, std::string::npos) << r.history[k];
        EXPECT_EQ(at<unpreference, r.history_ratings[k]> 3) << r.history[k];
      }
    }
  }
}

TEST(MovieLens, NonAsciiTitlesAreEscapedAsPythonDoes) {
  std::string text = read_file(kRaw / "u.item");
  // u.item is Latin-1: e.g. "Belle de jour" is plain, but some titles carry é (0xE9).
  ASSERT_NE(text.find('\xe9'), std::string::npos);
  test::ScratchDir out;
  Splits s;
  s.train.push_back({"i", "caf\xc3\xa9", "Yes."});
  write_splits(out.path(), s);
  EXPECT_NE(read_file(out / "train.json").find("caf\\u00e9"), std::string::npos);
}

// Builds a small raw folder from the real files, with one line replaced.
class BrokenMovieLens : public ::testing::Test {
 protected:
  void write_raw(const std::string& data_line_3) {
    std::string data = read_file(kRaw / "u.data");
    size_t first = data.find('\n'), second = data.find('\n', first + 1),
           third = data.find('\n', second + 1);
    data = data.substr(0, second + 1) + data_line_3 + data.substr(third);
    write_file_atomically(dir_ / "u.data", data);
    write_file_atomically(dir_ / "u.item", read_file(kRaw / "u.item"));
  }
  void expect_error(const std::string& needle) {
    try {
      write_splits(dir_ / "out", prepare_movielens(dir_.path()));
      FAIL() << "expected an InputError containing " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir_ / "out")) << "no output may be left behind";
  }
  test::ScratchDir dir_;
};

TEST_F(BrokenMovieLens, WrongColumnCountNamesFileAndLine) {
  write_raw("196\t242\t3");
  expect_error("u.data:3: expected 4 tab-separated columns");
}

TEST_F(BrokenMovieLens, BadNumberNamesFileAndLine) {
  write_raw("196\t242\tthree\t881250949");
  expect_error("u.data:3: bad number for rating: \"three\"");
}

TEST_F(BrokenMovieLens, UnknownMovieNamesFileAndLine) {
  write_raw("196\t99999\t3\t881250949");
  expect_error("u.data:3: movie id 99999 is not in u.item");
}

TEST_F(BrokenMovieLens, BadEncodingInUData) {
  write_raw(
      "196\t242\t3\t88125\xff"
      "0949");
  expect_error("u.data:3: bad encoding");
}

TEST_F(BrokenMovieLens, Utf8ReencodedUItemIsRefused) {
  write_raw("196\t242\t3\t881250949");
  write_file_atomically(dir_ / "u.item", "1|Caf\xc3\xa9 (1995)|01-Jan-1995||x|0\n");
  expect_error("u.item: bad encoding: the file is UTF-8");
}

TEST_F(BrokenMovieLens, MissingFile) {
  write_raw("196\t242\t3\t881250949");
  std::filesystem::remove(dir_ / "u.item");
  expect_error("u.item: no such file");
}

}  // namespace
}  // namespace tallrec
