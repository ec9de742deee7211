// JSON text that crosses a boundary. Two rules, because nlohmann's parser recurses once per
// nesting level (a 100,000-deep document overflows the stack) and its dump() throws on a string
// that is not UTF-8 (an error message quoting a client's bytes would then take the process down):
//   - text from outside is checked for depth before it is parsed;
//   - JSON we send is dumped with invalid UTF-8 replaced by U+FFFD, never thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace tallrec {

// Deep enough for every document tallrec defines (grids, specs, messages nest under 10).
inline constexpr int kMaxJsonDepth = 64;

// Offset of the bracket that opens nesting level max_depth + 1, or npos if the text stays
// within it (brackets inside strings do not count). Linear, no recursion, any input.
size_t find_json_too_deep(std::string_view text, int max_depth = kMaxJsonDepth);

// Parses text from outside: InputError "ORIGIN: ..." when it nests deeper than max_depth or is
// not JSON (the parser's message, its quoted bytes made safe to print).
nlohmann::json parse_json_from_outside(std::string_view text, const std::string& origin,
                                       int max_depth = kMaxJsonDepth);

// dump() that never throws on invalid UTF-8 in strings (replaced by U+FFFD).
std::string dump_json(const nlohmann::json& j, int indent = -1);

// The text with every byte sequence that is not UTF-8 replaced by U+FFFD.
std::string printable_utf8(std::string_view text);

// `value` converted to T exactly, for fields read from outside: an integer type takes only a JSON
// integer within its range (nlohmann's get<int64_t>() casts a float, undefined behaviour when it
// is out of range, and wraps integers that are); a floating type takes any number; bool and
// string only themselves; vectors and string-keyed maps element by element. False (and `out`
// unspecified) when the type or range does not fit.
template <class T>
bool get_exact(const nlohmann::json& value, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) return false;
    out = value.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (value.is_number_unsigned()) {
      const uint64_t v = value.get<uint64_t>();
      if (v > uint64_t(std::numeric_limits<T>::max())) return false;
      out = T(v);
    } else if (value.is_number_integer()) {
      const int64_t v = value.get<int64_t>();
      if constexpr (std::is_signed_v<T>) {
        if (v < int64_t(std::numeric_limits<T>::min()) ||
            v > int64_t(std::numeric_limits<T>::max()))
          return false;
      } else {
        if (v < 0 || uint64_t(v) > uint64_t(std::numeric_limits<T>::max())) return false;
      }
      out = T(v);
    } else {
      return false;
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) return false;
    out = value.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) return false;
    out = value.get<std::string>();
  } else if constexpr (requires {
                         typename T::value_type;
                         out.push_back(std::declval<typename T::value_type>());
                       }) {
    if (!value.is_array()) return false;
    out.clear();
    for (const auto& item : value) {
      typename T::value_type element{};
      if (!get_exact(item, element)) return false;
      out.push_back(std::move(element));
    }
  } else {  // std::map<std::string, U>
    if (!value.is_object()) return false;
    out.clear();
    for (const auto& [key, item] : value.items()) {
      typename T::mapped_type element{};
      if (!get_exact(item, element)) return false;
      out.emplace(key, std::move(element));
    }
  }
  return true;
}

}  // namespace tallrec
