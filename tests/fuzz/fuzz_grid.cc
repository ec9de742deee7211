// Grid documents (coordinator/grid.h), as `tallrec submit` and POST /api/sweeps take them:
// InputError is the only refusal.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "coordinator/grid.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)tallrec::parse_grid(std::string(reinterpret_cast<const char*>(data), size), "grid");
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
