#include "common/pickle_scan.h"

#include <array>
#include <cstdint>

#include "common/error.h"

namespace tallrec {
namespace {

// How an opcode's argument is laid out.
enum class Arg { kNone, kFixed, kLength, kLine, kTwoLines };
struct Layout {
  Arg arg;
  int bytes;  // kFixed: the argument's size; kLength: the size of the little-endian length
};

// The opcodes of protocols 0-5 by the layout of their argument (Python's Lib/pickletools.py).
constexpr uint8_t kNoArgument[] = {'(',  '.',  '0',  '1',  '2',  'N',  't',  ')',  ']',
                                   '}',  'a',  'e',  's',  'u',  'b',  'R',  'Q',  'd',
                                   'l',  'o',  0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f,
                                   0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98};
constexpr uint8_t kFixed1[] = {'K', 'h', 'q', 0x80, 0x82};  // BININT1, BINGET, BINPUT, PROTO, EXT1
constexpr uint8_t kFixed2[] = {'M', 0x83};                  // BININT2, EXT2
constexpr uint8_t kFixed4[] = {'J', 'j', 'r', 0x84};  // BININT, LONG_BINGET, LONG_BINPUT, EXT4
constexpr uint8_t kFixed8[] = {'G', 0x95};            // BINFLOAT, FRAME
// SHORT_BINBYTES, SHORT_BINSTRING, LONG1, SHORT_BINUNICODE
constexpr uint8_t kLength1[] = {'C', 'U', 0x8a, 0x8c};
constexpr uint8_t kLength4[] = {'B', 'T', 'X', 0x8b};  // BINBYTES, BINSTRING, BINUNICODE, LONG4
constexpr uint8_t kLength8[] = {0x8d, 0x8e, 0x96};     // BINUNICODE8, BINBYTES8, BYTEARRAY8
constexpr uint8_t kLine[] = {'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p'};  // text up to a newline
constexpr uint8_t kTwoLines[] = {'c', 'i'};                            // GLOBAL, INST

// The little-endian unsigned integer of `bytes` bytes at p[at] (the caller checked they exist).
uint64_t little_endian(std::string_view p, size_t at, int bytes) {
  uint64_t n = 0;
  for (int k = bytes - 1; k >= 0; --k) n = (n << 8) | uint8_t(p[at + size_t(k)]);
  return n;
}

// Every opcode's layout in one table, indexed by the opcode (a scan looks one up per opcode).
struct Known {
  bool known = false;
  Layout layout{Arg::kNone, 0};
};
bool layout_of(uint8_t op, Layout& out) {
  static const std::array<Known, 256> table = [] {
    std::array<Known, 256> t{};
    auto add = [&t](const auto& set, Layout layout) {
      for (uint8_t o : set) t[o] = {true, layout};
    };
    add(kNoArgument, {Arg::kNone, 0});
    add(kFixed1, {Arg::kFixed, 1});
    add(kFixed2, {Arg::kFixed, 2});
    add(kFixed4, {Arg::kFixed, 4});
    add(kFixed8, {Arg::kFixed, 8});
    add(kLength1, {Arg::kLength, 1});
    add(kLength4, {Arg::kLength, 4});
    add(kLength8, {Arg::kLength, 8});
    add(kLine, {Arg::kLine, 0});
    add(kTwoLines, {Arg::kTwoLines, 0});
    return t;
  }();
  if (!table[op].known) return false;
  out = table[op].layout;
  return true;
}

}  // namespace

void check_pickle_lengths(std::string_view p, const std::string& origin) {
  auto fail = [&](size_t at, const std::string& what) {
    throw InputError(origin + ": damaged pickle: " + what + " at byte " + std::to_string(at));
  };
  size_t at = 0;
  uint64_t memoized = 0;  // memo slots so far: a pickler numbers them 0, 1, 2, ... as it goes
  while (at < p.size()) {
    const size_t op_at = at;
    const uint8_t op = uint8_t(p[at++]);
    Layout layout{};
    if (!layout_of(op, layout)) fail(op_at, "unknown opcode " + std::to_string(op));
    const size_t left = p.size() - at;
    switch (layout.arg) {
      case Arg::kNone:
        break;
      case Arg::kFixed: {
        if (size_t(layout.bytes) > left) fail(op_at, "an argument runs past the end");
        // The unpickler sizes its memo table by the index a PUT names: a LONG_BINPUT of 2^31
        // would allocate gigabytes (fuzz_torch_bin found it). Indices follow the puts so far.
        if (op == 'q' || op == 'r' || op == 'h' || op == 'j') {
          const uint64_t index = little_endian(p, at, layout.bytes);
          const bool put = op == 'q' || op == 'r';
          if (put ? index > memoized : index >= memoized)
            fail(op_at, "memo index " + std::to_string(index) + " where " +
                            std::to_string(memoized) + " slots exist");
          if (put && index == memoized) ++memoized;
        }
        at += size_t(layout.bytes);
        break;
      }
      case Arg::kLength: {
        if (size_t(layout.bytes) > left) fail(op_at, "a length runs past the end");
        const uint64_t n = little_endian(p, at, layout.bytes);
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
    if (op == 0x94) ++memoized;  // MEMOIZE
    if (op == '.') return;       // STOP: what follows is not the unpickler's
  }
  fail(at, "no STOP opcode");
}

}  // namespace tallrec
