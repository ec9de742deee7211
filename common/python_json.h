// JSON text exactly as Python's `json.dump(obj, f, indent=4)` writes it (ensure_ascii=True,
// separators "," and ": ", no trailing newline). TALLRec's released prompt files were written
// that way, and we reproduce them byte for byte.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tallrec {

// Keys are written in insertion order, hence ordered_json. Supports null, booleans, integers,
// strings, arrays and objects; floats throw (Python's repr of floats is not reproduced here).
std::string python_json_dumps(const nlohmann::ordered_json& value, int indent = 4);

// Appends `s` (UTF-8) as a Python ensure_ascii JSON string literal, quotes included.
void append_python_json_string(std::string& out, std::string_view s);

}  // namespace tallrec
