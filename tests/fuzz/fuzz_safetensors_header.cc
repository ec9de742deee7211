// Safetensors headers (common/safetensors_header.h), as the trainer maps them and the pre-flight
// check reads them: InputError only, and every entry it accepts lies inside the file.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/error.h"
#include "common/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = tallrec::parse_safetensors_header(
        std::string_view(reinterpret_cast<const char*>(data), size), size, "model.safetensors");
    for (const auto& [name, e] : header.entries)
      if (e.begin > e.end || header.data_start + e.end > size)
        std::abort();  // accepted, yet outside the file
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
