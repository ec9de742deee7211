#include "jobs/data/semicolon_csv.h"

#include "common/error.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(SemicolonCsv, TokenizesLikePandasCParser) {
  auto rows = parse_semicolon_csv(
      "\"a\";\"b;c\";d\r\n\n\"x\"\"y\";\"multi\nline\";z\"q\n\"Real \\\"J\\\" Life &amp; "
      "more\";2\n",
      "f.csv");
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
    EXPECT_STREQ(e.what(),
                 "f.csv:2: a quoted field opened here is never closed (end of file inside quotes)");
  }
}

}  // namespace
}  // namespace tallrec
