#include "jobs/data/prompt_record.h"

#include "common/error.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(PromptRecords, ErrorsNameRecordAndField) {
  EXPECT_THROW(parse_prompt_records("{}", "x.json"), InputError);
  EXPECT_THROW(parse_prompt_records("[8800e880]", "x.json"),
               InputError);  // out_of_range, found by fuzzing
  EXPECT_THROW(parse_prompt_records(std::string(100000, '[') + std::string(100000, ']'), "x.json"),
               InputError);  // too deep
  try {
    parse_prompt_records("[{\"instruction\": \"a\", \"input\": \"b\"}]", "x.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "x.json: record 0: missing field \"output\"");
  }
}

}  // namespace
}  // namespace tallrec
