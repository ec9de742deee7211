#include "jobs/data/special_ids.h"

#include <charconv>
#include <limits>

#include "common/error.h"

namespace tallrec {

SpecialIdsChoice parse_special_ids(const std::string& text) {
  SpecialIdsChoice choice;
  const auto fail = [&](const std::string& item, const std::string& why) {
    throw InputError("special ids \"" + text + "\": \"" + item + "\" " + why +
                     " (expected llama or decapoda, then bos=N|none, eos=N, pad=N, "
                     "comma-separated)");
  };
  bool any = false;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      if (item != "llama" && item != "decapoda") fail(item, "is not a base");
      if (any) fail(item, "must come first and once");
      choice.base = item;
    } else {
      const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
      std::optional<int32_t>* slot = key == "bos"   ? &choice.bos
                                     : key == "eos" ? &choice.eos
                                     : key == "pad" ? &choice.pad
                                                    : nullptr;
      if (!slot) fail(item, "names no special token");
      if (slot->has_value()) fail(item, "sets " + key + " a second time");
      if (value == "none") {
        if (key != "bos") fail(item, ": only BOS can be left out (TALLRec appends EOS; pad fills)");
        *slot = -1;
      } else {
        int64_t id = -1;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
        if (ec != std::errc() || end != value.data() + value.size() || id < 0 ||
            id > std::numeric_limits<int32_t>::max())
          fail(item, "is not a token id");
        *slot = int32_t(id);
      }
    }
    any = true;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return choice;
}

}  // namespace tallrec
