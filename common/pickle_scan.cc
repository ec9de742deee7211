#include "common/pickle_scan.h"

#include <cstdint>

#include "common/error.h"

namespace tallrec {
namespace {

// How an opcode's argument is laid out (Python's Lib/pickletools.py, protocols 0-5).
enum class Arg { kNone, kFixed, kLength, kLine, kTwoLines };
struct Layout {
  Arg arg;
  int bytes;  // kFixed: the argument's size; kLength: the size of the little-endian length
};

bool layout_of(uint8_t op, Layout& out) {
  switch (op) {
    // No argument.
    case '(':
    case '.':
    case '0':
    case '1':
    case '2':
    case 'N':
    case 0x88:
    case 0x89:
    case 't':
    case ')':
    case ']':
    case '}':
    case 'a':
    case 'e':
    case 's':
    case 'u':
    case 'b':
    case 'R':
    case 'Q':
    case 0x81:
    case 0x92:
    case 0x93:
    case 0x90:
    case 0x91:
    case 0x8f:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x94:
    case 0x97:
    case 0x98:
    case 'd':
    case 'l':
    case 'o':
      out = {Arg::kNone, 0};
      return true;
    // A fixed-size argument.
    case 0x80:
    case 'K':
    case 'q':
    case 'h':
    case 0x82:
      out = {Arg::kFixed, 1};
      return true;
    case 'M':
    case 0x83:
      out = {Arg::kFixed, 2};
      return true;
    case 'J':
    case 'r':
    case 'j':
    case 0x84:
      out = {Arg::kFixed, 4};
      return true;
    case 'G':
    case 0x95:
      out = {Arg::kFixed, 8};
      return true;
    // A length, then that many bytes.
    case 0x8c:
    case 'C':
    case 'U':
    case 0x8a:
      out = {Arg::kLength, 1};
      return true;
    case 'X':
    case 'B':
    case 'T':
    case 0x8b:
      out = {Arg::kLength, 4};
      return true;
    case 0x8d:
    case 0x8e:
    case 0x96:
      out = {Arg::kLength, 8};
      return true;
    // Text up to a newline (GLOBAL and INST: two such lines).
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
    case 'p':
    case 'g':
    case 'P':
      out = {Arg::kLine, 0};
      return true;
    case 'c':
    case 'i':
      out = {Arg::kTwoLines, 0};
      return true;
    default:
      return false;
  }
}

}  // namespace

void check_pickle_lengths(std::string_view p, const std::string& origin) {
  auto fail = [&](size_t at, const std::string& what) {
    throw InputError(origin + ": damaged pickle: " + what + " at byte " + std::to_string(at));
  };
  size_t at = 0;
  while (at < p.size()) {
    const size_t op_at = at;
    const uint8_t op = uint8_t(p[at++]);
    Layout layout{};
    if (!layout_of(op, layout)) fail(op_at, "unknown opcode " + std::to_string(op));
    const size_t left = p.size() - at;
    switch (layout.arg) {
      case Arg::kNone:
        break;
      case Arg::kFixed:
        if (size_t(layout.bytes) > left) fail(op_at, "an argument runs past the end");
        at += size_t(layout.bytes);
        break;
      case Arg::kLength: {
        if (size_t(layout.bytes) > left) fail(op_at, "a length runs past the end");
        uint64_t n = 0;
        for (int k = layout.bytes - 1; k >= 0; --k) n = (n << 8) | uint8_t(p[at + size_t(k)]);
        at += size_t(layout.bytes);
        if (n > p.size() - at)
          fail(op_at, "a length of " + std::to_string(n) + " bytes where " +
                          std::to_string(p.size() - at) + " remain");
        at += size_t(n);
        break;
      }
      case Arg::kLine:
      case Arg::kTwoLines:
        for (int line = 0; line < (layout.arg == Arg::kTwoLines ? 2 : 1); ++line) {
          const size_t end = p.find('\n', at);
          if (end == std::string_view::npos) fail(op_at, "a text argument without its newline");
          at = end + 1;
        }
        break;
    }
    if (op == '.') return;  // STOP: what follows is not the unpickler's
  }
  fail(at, "no STOP opcode");
}

}  // namespace tallrec
