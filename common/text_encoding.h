// Text encodings at the edges: raw datasets come in Latin-1 (MovieLens u.item, Book-Crossing)
// and everything inside tallrec is UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tallrec {

// Every byte is a code point U+0000..U+00FF, so Latin-1 decoding cannot fail.
std::string latin1_to_utf8(std::string_view latin1);

// Offset of the first byte that is not part of well-formed UTF-8, or npos if all is well.
size_t find_invalid_utf8(std::string_view text);

// True if the text has at least one multi-byte UTF-8 sequence and no invalid byte: a sign
// that a file documented as Latin-1 was re-encoded to UTF-8 (decoding it as Latin-1 would
// silently produce mojibake such as "Ã©").
bool looks_like_utf8_multibyte(std::string_view text);

// Decodes one code point at `pos` (advancing it). The text must be valid UTF-8.
char32_t next_code_point(std::string_view utf8, size_t& pos);

}  // namespace tallrec
