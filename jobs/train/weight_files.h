// The weight files labs have, told apart by their content (never by name alone), and read
// through one interface: safetensors (memory-mapped) and PyTorch's torch.save zip format
// (`pytorch_model*.bin`, PEFT 0.3's `adapter_model.bin`), read with libtorch's own reader, no
// Python. A Git LFS pointer (the file a clone without `git lfs pull` has) and the pre-1.6 legacy
// pickle format are refused with what to do.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/weight_format.h"

namespace tallrec {

// Tensors by name from one file of either format.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual bool contains(const std::string& name) const = 0;
  virtual std::vector<std::string> names() const = 0;
  // Tensor `name` as `dtype`, the caller's own (nothing else refers to its memory); InputError
  // naming the file and tensor if it is missing or (when `expected_shape` is given) has another
  // shape. Each name is loaded once: a torch file hands its tensor over and forgets it.
  virtual at::Tensor load(const std::string& name, at::ScalarType dtype,
                          const std::vector<int64_t>& expected_shape = {}) = 0;
};

// Opens a safetensors or torch zip file by its content.
std::unique_ptr<TensorSource> open_tensor_file(const std::filesystem::path& path);

// A torch.save'd dict of tensors (a state_dict). The zip is read with PyTorchStreamReader, one
// storage record at a time, into the file's tensors (not the file's bytes and then the tensors);
// load() hands each over without a copy when it has the dtype asked for, so a shard of
// pytorch_model-*.bin is never held twice.
class TorchCheckpointFile : public TensorSource {
 public:
  explicit TorchCheckpointFile(const std::filesystem::path& path);
  bool contains(const std::string& name) const override { return tensors_.count(name) > 0; }
  std::vector<std::string> names() const override;
  at::Tensor load(const std::string& name, at::ScalarType dtype,
                  const std::vector<int64_t>& expected_shape = {}) override;

 private:
  std::filesystem::path path_;
  std::map<std::string, at::Tensor> tensors_;
};

}  // namespace tallrec
