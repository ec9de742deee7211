#include "jobs/data/semicolon_csv.h"

#include "common/error.h"

namespace tallrec {

std::vector<CsvRow> parse_semicolon_csv(std::string_view text, const std::string& origin) {
  enum class State { kStartRecord, kStartField, kInField, kInQuoted, kQuoteInQuoted };
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  State state = State::kStartRecord;
  size_t line = 1;
  size_t quote_line = 0;

  auto end_field = [&] {
    row.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    rows.push_back(std::move(row));
    row = CsvRow{};
    state = State::kStartRecord;
  };

  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool newline = c == '\n' || c == '\r';
    // "\r\n" is one line break.
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;

    switch (state) {
      case State::kStartRecord:
        if (newline) break;  // blank line: skipped, as pandas does (skip_blank_lines)
        row.line = line;
        state = State::kStartField;
        [[fallthrough]];
      case State::kStartField:
        if (c == '"') {
          state = State::kInQuoted;
          quote_line = line;
        } else if (c == ';')
          end_field();
        else if (newline)
          end_record();
        else {
          field += c;
          state = State::kInField;
        }
        break;
      case State::kInField:
        if (c == ';') {
          end_field();
          state = State::kStartField;
        } else if (newline)
          end_record();
        else
          field += c;
        break;
      case State::kInQuoted:
        if (c == '"')
          state = State::kQuoteInQuoted;
        else if (newline)
          field += '\n';
        else
          field += c;
        break;
      case State::kQuoteInQuoted:
        if (c == '"') {
          field += '"';
          state = State::kInQuoted;
        } else if (c == ';') {
          end_field();
          state = State::kStartField;
        } else if (newline)
          end_record();
        else {
          field += c;
          state = State::kInField;
        }
        break;
    }
    if (newline) ++line;
  }
  switch (state) {
    case State::kStartRecord:
      break;
    case State::kInQuoted:
      throw input_error_at(
          origin, quote_line,
          "a quoted field opened here is never closed (end of file inside quotes)");
    default:
      end_record();
  }
  return rows;
}

}  // namespace tallrec
