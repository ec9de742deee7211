#include "jobs/data/tokenizer.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/tokenize_records.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(Tokenizer, AnswerIdsAreLookedUpInContext) {
  Tokenizer tok(test::tokenizer_model());
  EXPECT_EQ(tok.vocab_size(), 32000);
  auto answers = lookup_answer_ids(tok);
  EXPECT_EQ(answers.yes, 8241);
  EXPECT_EQ(answers.no, 3782);
  auto ids = tok.encode("### Response:\nYes.");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 3, ids.end()),
            (std::vector<int32_t>{13, 8241, 29889}));
}

TEST(Tokenizer, MissingOrBogusModelIsAnInputError) {
  test::ScratchDir dir;
  EXPECT_THROW(Tokenizer(dir / "nope.model"), InputError);
  write_file_atomically(dir / "bogus.model", "not a protobuf");
  EXPECT_THROW(Tokenizer(dir / "bogus.model"), InputError);
}

}  // namespace
}  // namespace tallrec
