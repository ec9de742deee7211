#include "common/python_json.h"

#include "common/error.h"
#include "common/text_encoding.h"

namespace tallrec {
namespace {

void append_u_escape(std::string& out, unsigned code_unit) {
  static const char* kHex = "0123456789abcdef";  // Python writes lowercase hex
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(code_unit >> shift) & 0xF];
}

void dump(std::string& out, const nlohmann::ordered_json& v, int indent, int depth) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(size_t(indent * d), ' ');
  };
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      out += "null";
      return;
    case nlohmann::json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case nlohmann::json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return;
    case nlohmann::json::value_t::string:
      append_python_json_string(out, v.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array: {
      if (v.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ',';
        first = false;
        newline(depth + 1);
        dump(out, item, indent, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case nlohmann::json::value_t::object: {
      if (v.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ',';
        first = false;
        newline(depth + 1);
        append_python_json_string(out, key);
        out += ": ";
        dump(out, item, indent, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      throw Error("python_json_dumps: floats and binary values are not supported");
  }
}

}  // namespace

void append_python_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = next_code_point(s, pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp >= 0x20 && cp < 0x7F) {
          out += char(cp);  // Python keeps only printable ASCII (' '..'~') as it is
        } else if (cp < 0x10000) {
          append_u_escape(out, unsigned(cp));
        } else {
          char32_t v = cp - 0x10000;  // astral plane: a UTF-16 surrogate pair
          append_u_escape(out, unsigned(0xD800 | (v >> 10)));
          append_u_escape(out, unsigned(0xDC00 | (v & 0x3FF)));
        }
    }
  }
  out += '"';
}

std::string python_json_dumps(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  dump(out, value, indent, 0);
  return out;
}

}  // namespace tallrec
