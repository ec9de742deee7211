// The trainer's run spec (jobs/train/run_spec.h), the file a worker hands tallrec-train:
// InputError only.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/run_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)tallrec::parse_run_spec(std::string(reinterpret_cast<const char*>(data), size),
                                  "spec.json");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
