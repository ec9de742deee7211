// The header of a safetensors file, parsed and checked without torch (the trainer's reader and
// the CLI's pre-flight check share it). Layout: u64 little-endian header size N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// tensor bytes, offsets counted from the end of the header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tallrec {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;  // safetensors' own limit

struct SafetensorsEntry {
  std::string
      dtype;  // the file's tag: "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "I8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + header size: where the data section begins in the file
  std::map<std::string, SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;  // "__metadata__", string values only
};

// Bytes per element of a dtype tag; 0 for a tag this reader does not know.
size_t safetensors_element_size(std::string_view dtype);

// Parses `prefix`, the first bytes of a file of `file_size` bytes (at least 8 + the header
// size of them), and checks every entry: known dtype, non-negative shape, offsets that equal
// the shape's byte count and lie inside the file, no arithmetic that wraps around 2^64.
// Throws InputError "ORIGIN: bad header: ..." or "ORIGIN: truncated ...".
SafetensorsHeader parse_safetensors_header(std::string_view prefix, uint64_t file_size,
                                           const std::string& origin);

// Reads just the header of `path` (never the tensor data) and parses it as above.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

}  // namespace tallrec
