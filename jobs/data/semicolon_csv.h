// A reader for the Book-Crossing dump's CSV dialect that tokenizes the way pandas' C parser
// does with TALLRec's arguments (sep=';', quotechar '"', doublequote, no escape character):
// quoted fields may hold ';' and newlines, '""' is a literal quote, a quote inside an unquoted
// field is literal, text after a closing quote is appended to the field, blank lines are skipped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tallrec {

struct CsvRow {
  size_t line;  // 1-based physical line where the row starts
  std::vector<std::string> fields;
};

// Parses all rows (header included). Throws InputError naming `origin` and the line when a
// quoted field is still open at the end of the file (pandas: "EOF inside string").
std::vector<CsvRow> parse_semicolon_csv(std::string_view text, const std::string& origin);

}  // namespace tallrec
