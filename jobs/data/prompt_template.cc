#include "jobs/data/prompt_template.h"

#include "common/error.h"

namespace tallrec {
namespace {

std::string render(const PromptRecord& r, std::string_view response, PromptTemplate t) {
  const std::string_view noqa = t == PromptTemplate::kTallrec ? "  # noqa: E501" : "";
  std::string out;
  // As in TALLRec: an empty input selects the shorter preamble without "### Input:".
  if (!r.input.empty()) {
    out +=
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.";
    out += noqa;
    out += "\n\n### Instruction:\n" + r.instruction + "\n\n### Input:\n" + r.input +
           "\n\n### Response:\n";
  } else {
    out +=
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.";
    out += noqa;
    out += "\n\n### Instruction:\n" + r.instruction + "\n\n### Response:\n";
  }
  out += response;
  return out;
}

}  // namespace

PromptTemplate parse_prompt_template(std::string_view name) {
  if (name == "tallrec") return PromptTemplate::kTallrec;
  if (name == "clean") return PromptTemplate::kClean;
  throw InputError("unknown prompt template \"" + std::string(name) +
                   "\" (expected tallrec or clean)");
}

std::string_view prompt_template_name(PromptTemplate t) {
  return t == PromptTemplate::kTallrec ? "tallrec" : "clean";
}

std::string training_prompt(const PromptRecord& record, PromptTemplate t) {
  return render(record, record.output, t);
}

std::string evaluation_prompt(const PromptRecord& record, PromptTemplate t) {
  return render(record, "", t);
}

}  // namespace tallrec
