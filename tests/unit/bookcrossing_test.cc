#include "jobs/data/bookcrossing.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/semicolon_csv.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(SemicolonCsv, TokenizesLikePandasCParser) {
  auto rows = parse_semicolon_csv(
      "\"a\";\"b;c\";d\r\n\n\"x\"\"y\";\"multi\nline\";z\"q\n\"Real \\\"J\\\" Life &amp; more\";2\n", "f.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (std::vector<std::string>{"a", "b;c", "d"}));
  EXPECT_EQ(rows[1].line, 3u);  // the blank line 2 is skipped
  EXPECT_EQ(rows[1].fields, (std::vector<std::string>{"x\"y", "multi\nline", "z\"q"}));
  EXPECT_EQ(rows[2].line, 5u);
  // \" closes the quote; the text after it continues the field unquoted; &amp; splits it.
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"Real \\J\\\" Life &amp", " more\"", "2"}));
}

TEST(SemicolonCsv, UnclosedQuoteNamesItsLine) {
  try {
    parse_semicolon_csv("\"a\";\"b\"\n\"c\";\"never closed\n", "f.csv");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "f.csv:2: a quoted field opened here is never closed (end of file inside quotes)");
  }
}

const std::filesystem::path kFixture = test::source_dir() / "tests" / "fixtures" / "bookcrossing";

TEST(BookCrossing, FixtureProducesSplitsAndWarnsAboutTheBrokenRow) {
  std::vector<std::string> warnings;
  BookCrossingOptions options;
  options.split_seed = 0;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  Splits s = prepare_bookcrossing(kFixture, options);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("BX-Books.csv:9: skipped: expected 8 fields, saw 9"), std::string::npos);
  const size_t n = s.train.size() + s.valid.size() + s.test.size();
  EXPECT_GE(n, 10u);
  EXPECT_EQ(s.train.size(), size_t(double(n) * 0.8));
  for (const auto* part : {&s.train, &s.valid, &s.test}) {
    for (const auto& r : *part) {
      EXPECT_TRUE(r.output == "Yes." || r.output == "No.");
      EXPECT_NE(r.input.find("\nWhether the user will like the target book \"\""), std::string::npos);
    }
  }
}

class BrokenBookCrossing : public ::testing::Test {
 protected:
  void write(const std::string& ratings, const std::string& books) {
    write_file_atomically(dir_ / "BX-Book-Ratings.csv", ratings);
    write_file_atomically(dir_ / "BX-Books.csv", books);
  }
  void expect_error(const std::string& needle) {
    try {
      prepare_bookcrossing(dir_.path(), {});
      FAIL() << "expected an InputError containing " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  const std::string books_ = "\"ISBN\";\"Book-Title\";\"Book-Author\"\n\"1\";\"T\";\"A\"\n";
  test::ScratchDir dir_;
};

TEST_F(BrokenBookCrossing, WrongColumnCountInRatings) {
  write("\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"1\";\"1\";\"5\"\n\"1\";\"1\";\"5\";\"9\"\n", books_);
  expect_error("BX-Book-Ratings.csv:3: expected 3 fields (User-ID;ISBN;Book-Rating), saw 4");
}

TEST_F(BrokenBookCrossing, BadNumbers) {
  write("\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"1\";\"1\";\"five\"\n", books_);
  expect_error("BX-Book-Ratings.csv:2: bad number for Book-Rating: \"five\"");
  write("\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"x1\";\"1\";\"5\"\n", books_);
  expect_error("BX-Book-Ratings.csv:2: bad number for User-ID");
}

TEST_F(BrokenBookCrossing, WrongHeaderAndMissingFile) {
  write("\"User\";\"ISBN\";\"Book-Rating\"\n", books_);
  expect_error("BX-Book-Ratings.csv:1: expected column 1 to be \"User-ID\", found \"User\"");
  std::filesystem::remove(dir_ / "BX-Books.csv");
  expect_error("BX-Books.csv: no such file");
}

TEST_F(BrokenBookCrossing, Utf8ReencodedDumpIsRefused) {
  write("\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"1\";\"1\";\"5\"\n",
        "\"ISBN\";\"Book-Title\";\"Book-Author\"\n\"1\";\"Caf\xc3\xa9\";\"A\"\n");
  expect_error("BX-Books.csv: bad encoding: the file is UTF-8");
}

}  // namespace
}  // namespace tallrec
