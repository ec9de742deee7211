// The trainer's specs, the file a worker hands tallrec-train: a run spec
// (common/run_spec.h) or, when it names a method, a baseline spec (common/baseline_spec.h), read
// as `tallrec-train train` reads them. InputError only.
#include <cstdint>
#include <string>

#include "common/baseline_spec.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/run_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json spec = tallrec::parse_json_from_outside(text, "spec.json");
    if (tallrec::spec_method(spec, "spec.json") != tallrec::Method::kLlm) {
      (void)tallrec::parse_baseline_spec(spec, "spec.json");
      return 0;
    }
  } catch (const tallrec::InputError&) {
  }
  try {
    (void)tallrec::parse_run_spec(text, "spec.json");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
