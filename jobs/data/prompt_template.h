// The Alpaca prompt template as TALLRec's finetune_rec.py (training) and evaluate.py
// (evaluation) have it, byte for byte: the first sentence is followed by a literal
// "  # noqa: E501" that leaked from a Python source comment into the prompt. The `clean`
// template drops it; nothing else differs.
#pragma once

#include <string>
#include <string_view>

#include "jobs/data/prompt_record.h"

namespace tallrec {

enum class PromptTemplate { kTallrec, kClean };

// "tallrec" or "clean"; throws InputError for anything else.
PromptTemplate parse_prompt_template(std::string_view name);
std::string_view prompt_template_name(PromptTemplate t);

// The training prompt: ends with the record's output ("...### Response:\nYes.").
std::string training_prompt(const PromptRecord& record, PromptTemplate t);
// The evaluation prompt: ends right after "### Response:\n".
std::string evaluation_prompt(const PromptRecord& record, PromptTemplate t);

}  // namespace tallrec
