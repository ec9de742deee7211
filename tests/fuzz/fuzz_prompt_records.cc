// A user's dataset files: prompt JSON in TALLRec's record format (jobs/data/prompt_record.h) and
// the interaction records beside it (jobs/data/interaction_record.h): InputError only.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "jobs/data/interaction_record.h"
#include "jobs/data/prompt_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)tallrec::parse_prompt_records(text, "records.json");
  } catch (const tallrec::InputError&) {
  }
  try {
    (void)tallrec::parse_interaction_records(text, "records.interactions.jsonl");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
