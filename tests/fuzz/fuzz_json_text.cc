// common/json_text.h: the depth check never recurses and never reads past the text; parsing
// from outside refuses with InputError only; dump_json never throws, whatever the strings hold.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/json_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)tallrec::find_json_too_deep(text, 16);
  try {
    (void)tallrec::dump_json(tallrec::parse_json_from_outside(text, "input", 16));
  } catch (const tallrec::InputError&) {
  }
  (void)tallrec::dump_json(
      nlohmann::json{{"quoted", text}});  // invalid UTF-8 is replaced, not thrown
  (void)tallrec::printable_utf8(text);
  return 0;
}
