#include "jobs/train/safetensors.h"

#include <unistd.h>

#include <ATen/ATen.h>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/mapped_file.h"
#include "common/safetensors_header.h"

namespace tallrec {
namespace fs = std::filesystem;

std::string shape_text(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

namespace {

at::ScalarType dtype_from_tag(const std::string& tag, const std::string& origin) {
  if (tag == "F32") return at::kFloat;
  if (tag == "F16") return at::kHalf;
  if (tag == "BF16") return at::kBFloat16;
  if (tag == "F64") return at::kDouble;
  if (tag == "I64") return at::kLong;
  if (tag == "I32") return at::kInt;
  if (tag == "U8") return at::kByte;
  if (tag == "I8") return at::kChar;
  if (tag == "BOOL") return at::kBool;
  throw InputError(origin + ": unsupported dtype \"" + tag + "\"");
}

std::string tag_from_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "F32";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kDouble:
      return "F64";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kByte:
      return "U8";
    case at::kChar:
      return "I8";
    case at::kBool:
      return "BOOL";
    default:
      throw Error("safetensors: cannot store dtype " + std::string(c10::toString(t)));
  }
}

std::string header_for(const std::vector<TensorSpec>& specs,
                       const std::map<std::string, std::string>& metadata,
                       std::vector<size_t>& offsets) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  size_t at = 0;
  for (const auto& s : specs) {
    size_t bytes = c10::elementSize(s.dtype);
    for (auto d : s.shape) bytes *= size_t(d);
    h[s.name] = {
        {"dtype", tag_from_dtype(s.dtype)}, {"shape", s.shape}, {"data_offsets", {at, at + bytes}}};
    offsets.push_back(at);
    at += bytes;
  }
  offsets.push_back(at);
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep tensor data 8-byte aligned
  return text;
}

}  // namespace

at::ScalarType parse_torch_dtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw InputError("unknown dtype \"" + name + "\" (expected float32, float16 or bfloat16)");
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  const std::string origin = path.string();
  file_ = std::make_unique<MappedFile>(path);
  base_ = file_->data();
  size_ = file_->size();
  SafetensorsHeader header = parse_safetensors_header(
      std::string_view(reinterpret_cast<const char*>(base_), size_), size_, origin);
  data_start_ = size_t(header.data_start);
  metadata_ = std::move(header.metadata);
  for (auto& [name, e] : header.entries)
    entries_.emplace(name, Entry{dtype_from_tag(e.dtype, origin), std::move(e.shape),
                                 size_t(e.begin), size_t(e.end)});
}

SafetensorsFile::~SafetensorsFile() = default;

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw InputError(path_.string() + ": missing tensor \"" + name + "\"");
  return it->second.shape;
}

at::Tensor SafetensorsFile::load(const std::string& name, at::ScalarType dtype,
                                 const std::vector<int64_t>& expected_shape) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw InputError(path_.string() + ": missing tensor \"" + name + "\"");
  const Entry& e = it->second;
  if (!expected_shape.empty() && e.shape != expected_shape) {
    throw InputError(path_.string() + ": tensor \"" + name + "\" has shape " + shape_text(e.shape) +
                     ", expected " + shape_text(expected_shape));
  }
  void* data = const_cast<uint8_t*>(base_ + data_start_ + e.begin);
  at::Tensor view = at::from_blob(data, e.shape, at::TensorOptions().dtype(e.dtype));
  at::Tensor copy = view.to(dtype, /*non_blocking=*/false, /*copy=*/true);
  file_->release(data_start_ + e.begin, e.end - e.begin);  // held once: as the copy
  return copy;
}

void write_safetensors_streaming(const fs::path& path, const std::vector<TensorSpec>& specs,
                                 const std::function<at::Tensor(size_t)>& produce,
                                 const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> offsets;
  const std::string header = header_for(specs, metadata, offsets);
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(tmp.string() + ": cannot create: " + std::strerror(errno));
  auto write = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      std::fclose(f);
      fs::remove(tmp);
      throw Error(tmp.string() + ": write failed");
    }
  };
  uint64_t header_size = header.size();
  write(&header_size, 8);
  write(header.data(), header.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    at::Tensor t = produce(i).to(at::kCPU, specs[i].dtype).contiguous();  // from any device
    if (t.sizes().vec() != specs[i].shape) {
      std::fclose(f);
      fs::remove(tmp);
      throw Error("write_safetensors: tensor \"" + specs[i].name +
                  "\" does not have its declared shape");
    }
    write(t.data_ptr(), t.nbytes());
  }
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0 || std::fclose(f) != 0) {
    fs::remove(tmp);
    throw Error(tmp.string() + ": cannot flush");
  }
  fs::rename(tmp, path);
}

void write_safetensors(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors)
    specs.push_back({t.name, t.tensor.scalar_type(), t.tensor.sizes().vec()});
  write_safetensors_streaming(
      path, specs, [&](size_t i) { return tensors[i].tensor; }, metadata);
}

}  // namespace tallrec
