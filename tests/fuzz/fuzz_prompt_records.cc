// Prompt JSON files in TALLRec's record format (jobs/data/prompt_record.h): InputError only.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "jobs/data/prompt_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)tallrec::parse_prompt_records(std::string(reinterpret_cast<const char*>(data), size),
                                        "records.json");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
