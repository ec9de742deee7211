#include "common/json_text.h"

#include "common/error.h"
#include "common/text_encoding.h"

namespace tallrec {

size_t find_json_too_deep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

nlohmann::json parse_json_from_outside(std::string_view text, const std::string& origin,
                                       int max_depth) {
  if (size_t at = find_json_too_deep(text, max_depth); at != std::string_view::npos)
    throw InputError(origin + ": JSON nested deeper than " + std::to_string(max_depth) +
                     " levels (at byte " + std::to_string(at) + ")");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&
               e) {  // parse_error, and out_of_range for a number such as 1e999
    throw InputError(origin + ": malformed JSON: " + printable_utf8(e.what()));
  }
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string printable_utf8(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const size_t bad = find_invalid_utf8(text);
    if (bad == std::string_view::npos) {
      out.append(text);
      break;
    }
    out.append(text.substr(0, bad));
    out.append("\xEF\xBF\xBD");
    text.remove_prefix(bad + 1);
  }
  return out;
}

}  // namespace tallrec
