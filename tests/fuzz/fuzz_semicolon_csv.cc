// Book-Crossing's semicolon CSV (jobs/data/semicolon_csv.h): InputError only.
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "jobs/data/semicolon_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)tallrec::parse_semicolon_csv(std::string_view(reinterpret_cast<const char*>(data), size),
                                       "x.csv");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
