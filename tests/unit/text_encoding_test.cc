#include "common/text_encoding.h"

#include "test_paths.h"

namespace tallrec {
namespace {

TEST(TextEncoding, Latin1AndUtf8Detection) {
  EXPECT_EQ(latin1_to_utf8("caf\xe9"), "caf\xc3\xa9");
  EXPECT_EQ(find_invalid_utf8("caf\xe9"), 3u);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);  // a UTF-16 surrogate is not UTF-8
  EXPECT_TRUE(looks_like_utf8_multibyte("caf\xc3\xa9"));
  EXPECT_FALSE(looks_like_utf8_multibyte("caf\xe9"));
  EXPECT_FALSE(looks_like_utf8_multibyte("plain ascii"));
}

}  // namespace
}  // namespace tallrec
