// A GGUF file (llama.cpp's model format, versions 2 and 3) read from outside, torch-free: its
// metadata, its tensor table, and dequantization of the tensor types llama-architecture files
// use (F32, F16, BF16, Q8_0, Q4_0, Q4_1, and the K-quants Q4_K, Q5_K, Q6_K). Every length, count,
// offset and size is checked against the file before it is used; anything malformed or not
// supported is an InputError that names the file and the key or tensor, never a crash or a huge
// allocation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tallrec {

class MappedFile;

struct GgufTensor {
  std::string name;
  uint32_t type;              // ggml_type
  std::vector<int64_t> dims;  // ggml's ne: the fastest-varying first ([in, out] for a weight)
  uint64_t offset;            // from the start of the file
  uint64_t bytes;
  int64_t elements;
};

// "F32", "Q4_1", ...; "type N" for an unknown one.
std::string ggml_type_name(uint32_t type);

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);
  ~GgufFile();

  // Key -> value: integers, numbers, booleans, strings, and arrays of them as JSON arrays.
  const nlohmann::json& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find(const std::string& name) const;
  // The tensor's values as fp32, in ggml order (dims[0] fastest). InputError naming the tensor
  // and its type when the type is not one of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K.
  std::vector<float> dequantize(const GgufTensor& tensor) const;
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  std::unique_ptr<MappedFile> file_;
  nlohmann::json metadata_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace tallrec
