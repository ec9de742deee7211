// JSON text that crosses a boundary. Two rules, because nlohmann's parser recurses once per
// nesting level (a 100,000-deep document overflows the stack) and its dump() throws on a string
// that is not UTF-8 (an error message quoting a client's bytes would then take the process down):
//   - text from outside is checked for depth before it is parsed;
//   - JSON we send is dumped with invalid UTF-8 replaced by U+FFFD, never thrown.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tallrec {

// Deep enough for every document tallrec defines (grids, specs, messages nest under 10).
inline constexpr int kMaxJsonDepth = 64;

// Offset of the bracket that opens nesting level max_depth + 1, or npos if the text stays
// within it (brackets inside strings do not count). Linear, no recursion, any input.
size_t find_json_too_deep(std::string_view text, int max_depth = kMaxJsonDepth);

// Parses text from outside: InputError "ORIGIN: ..." when it nests deeper than max_depth or is
// not JSON (the parser's message, its quoted bytes made safe to print).
nlohmann::json parse_json_from_outside(std::string_view text, const std::string& origin, int max_depth = kMaxJsonDepth);

// dump() that never throws on invalid UTF-8 in strings (replaced by U+FFFD).
std::string dump_json(const nlohmann::json& j, int indent = -1);

// The text with every byte sequence that is not UTF-8 replaced by U+FFFD.
std::string printable_utf8(std::string_view text);

}  // namespace tallrec
