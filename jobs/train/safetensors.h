// The safetensors format: u64 little-endian header size N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// raw little-endian tensor bytes. Files are memory-mapped; tensors are copied out one at a
// time (converted to the dtype the caller wants) and the copied pages are dropped from the
// process's resident memory, so a model is never held twice in memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tallrec {

class MappedFile;

class SafetensorsFile {
 public:
  // Maps the file and parses its header. Throws InputError naming the file for a bad header,
  // a truncated file, an unknown dtype or overlapping/out-of-range offsets.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const;
  std::vector<int64_t> shape(const std::string& name) const;
  // A copy of tensor `name` as `dtype`. Throws InputError naming the file and tensor if it is
  // missing or (when `expected_shape` is given) has another shape.
  at::Tensor load(const std::string& name, at::ScalarType dtype,
                  const std::vector<int64_t>& expected_shape = {}) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Entry {
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t begin, end;
  };
  std::filesystem::path path_;
  std::unique_ptr<MappedFile> file_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  at::Tensor tensor;  // written as its own dtype, contiguous
};

// Writes a safetensors file atomically (temporary file, then rename).
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Streaming variant for models too big to hold twice: `shapes` fixes the header, then
// `produce(i)` is called once per tensor, in order, and its bytes are appended.
struct TensorSpec {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};
void write_safetensors_streaming(const std::filesystem::path& path,
                                 const std::vector<TensorSpec>& specs,
                                 const std::function<at::Tensor(size_t)>& produce,
                                 const std::map<std::string, std::string>& metadata = {});

at::ScalarType parse_torch_dtype(const std::string& name);

// "[4096, 32000]": a shape as error messages print it.
std::string shape_text(at::IntArrayRef shape);  // "float32" | "float16" | "bfloat16"

}  // namespace tallrec
