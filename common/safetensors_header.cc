#include "common/safetensors_header.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {

size_t safetensors_element_size(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

namespace {

uint64_t header_size_of(std::string_view prefix, uint64_t file_size, const std::string& origin) {
  if (file_size < 8 || prefix.size() < 8)
    throw InputError(origin + ": truncated (" + std::to_string(file_size) + " bytes, no header)");
  uint64_t n = 0;
  std::memcpy(&n, prefix.data(), 8);  // little-endian, as every machine we build for
  if (n > file_size - 8)
    throw InputError(origin + ": bad header: header size " + std::to_string(n) +
                     " exceeds the file");
  if (n > kMaxSafetensorsHeaderBytes)
    throw InputError(origin + ": bad header: header size " + std::to_string(n) +
                     " is over the 100 MiB limit");
  return n;
}

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& info,
                             uint64_t data_bytes, const std::string& origin) {
  auto fail = [&](const std::string& what) -> void {
    throw InputError(origin + ": bad header: tensor \"" + printable_utf8(name) + "\" " + what);
  };
  if (!info.is_object()) fail("is not an object");
  SafetensorsEntry e;
  // Each field converted exactly (get_exact): a float where an integer belongs is refused, never
  // cast (fuzz_safetensors_header found a shape of 2.3e42).
  if (!info.contains("dtype") || !get_exact(info["dtype"], e.dtype)) fail("has no dtype string");
  if (!info.contains("shape") || !get_exact(info["shape"], e.shape))
    fail("has a shape that is not a list of integers");
  const nlohmann::json* offsets = info.contains("data_offsets") ? &info["data_offsets"] : nullptr;
  if (!offsets || !offsets->is_array() || offsets->size() != 2 ||
      !get_exact((*offsets)[0], e.begin) || !get_exact((*offsets)[1], e.end))
    fail("has data_offsets that are not [begin, end] in bytes");
  const size_t element = safetensors_element_size(e.dtype);
  if (element == 0)
    throw InputError(origin + ": unsupported dtype \"" + printable_utf8(e.dtype) + "\"");
  // Every product and sum checked: a crafted header must not wrap around 2^64.
  uint64_t bytes = element;
  for (int64_t d : e.shape) {
    if (d < 0 || (d > 0 && bytes > data_bytes / uint64_t(d))) fail("has an impossible shape");
    bytes *= uint64_t(d);
  }
  if (e.end < e.begin || e.end - e.begin != bytes) fail("has offsets that disagree with its shape");
  if (e.end > data_bytes)
    throw InputError(origin + ": truncated: tensor \"" + printable_utf8(name) +
                     "\" extends past the end of the file");
  return e;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view prefix, uint64_t file_size,
                                           const std::string& origin) {
  const uint64_t n = header_size_of(prefix, file_size, origin);
  if (prefix.size() - 8 < n) throw InputError(origin + ": truncated header");
  const std::string_view text = prefix.substr(8, size_t(n));
  if (find_json_too_deep(text) != std::string_view::npos)
    throw InputError(origin + ": bad header: JSON nested too deep");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(origin + ": bad header: " + printable_utf8(e.what()));
  }
  if (!header.is_object()) throw InputError(origin + ": bad header: not a JSON object");
  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t data_bytes = file_size - out.data_start;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) continue;
      for (const auto& [key, value] : info.items())
        if (value.is_string()) out.metadata[key] = value.get<std::string>();
      continue;
    }
    out.entries.emplace(name, parse_entry(name, info, data_bytes, origin));
  }
  return out;
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string origin = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(origin + ": cannot open");
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(origin + ": cannot read its size: " + ec.message());
  std::string prefix(8, '\0');
  in.read(prefix.data(), 8);
  prefix.resize(size_t(in.gcount()));
  const uint64_t n = header_size_of(prefix, file_size, origin);
  prefix.resize(8 + size_t(n));
  in.read(prefix.data() + 8, std::streamsize(n));
  if (uint64_t(in.gcount()) != n) throw InputError(origin + ": truncated header");
  return parse_safetensors_header(prefix, file_size, origin);
}

}  // namespace tallrec
