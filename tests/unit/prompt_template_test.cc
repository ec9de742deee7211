#include "jobs/data/prompt_template.h"

#include "common/error.h"
#include "test_paths.h"

namespace tallrec {
namespace {

const PromptRecord kRecord{"Say it.", "User Preference: \"A\"", "Yes."};

TEST(PromptTemplate, TallrecsBytesIncludingTheNoqaComment) {
  EXPECT_EQ(
      training_prompt(kRecord, PromptTemplate::kTallrec),
      "Below is an instruction that describes a task, paired with an input that provides further "
      "context. "
      "Write a response that appropriately completes the request.  # noqa: E501\n\n"
      "### Instruction:\nSay it.\n\n### Input:\nUser Preference: \"A\"\n\n### Response:\nYes.");
  EXPECT_EQ(evaluation_prompt(kRecord, PromptTemplate::kTallrec),
            training_prompt(kRecord, PromptTemplate::kTallrec)
                .substr(0, training_prompt(kRecord, PromptTemplate::kTallrec).size() - 4));
  EXPECT_EQ(evaluation_prompt({"Say it.", "", "No."}, PromptTemplate::kClean),
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the "
            "request.\n\n### Instruction:\nSay it.\n\n### Response:\n");
  EXPECT_THROW(parse_prompt_template("alpaca"), InputError);
}

}  // namespace
}  // namespace tallrec
