#include "jobs/train/weight_files.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "jobs/train/safetensors.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

std::string shape_text(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const fs::path& path) : file_(path) {}
  bool contains(const std::string& name) const override { return file_.contains(name); }
  std::vector<std::string> names() const override { return file_.names(); }
  at::Tensor load(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape) const override {
    return file_.load(name, dtype, shape);
  }

 private:
  SafetensorsFile file_;
};

}  // namespace

WeightFormat sniff_weight_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open");
  char head[64] = {};
  in.read(head, sizeof head);
  const size_t got = size_t(in.gcount());
  const std::string_view h(head, got);
  if (h.rfind("PK\x03\x04", 0) == 0) return WeightFormat::kTorchZip;
  if (h.rfind("version https://git-lfs", 0) == 0) return WeightFormat::kGitLfsPointer;
  if (got >= 2 && uint8_t(head[0]) == 0x80 && uint8_t(head[1]) <= 5) return WeightFormat::kTorchLegacy;
  if (got >= 9) {
    uint64_t n = 0;
    std::memcpy(&n, head, 8);
    if (n > 1 && n + 8 <= fs::file_size(path) && head[8] == '{') return WeightFormat::kSafetensors;
  }
  return WeightFormat::kUnknown;
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kSafetensors: return "safetensors";
    case WeightFormat::kTorchZip: return "PyTorch torch.save (zip)";
    case WeightFormat::kTorchLegacy: return "PyTorch legacy (pre-1.6) pickle";
    case WeightFormat::kGitLfsPointer: return "Git LFS pointer";
    case WeightFormat::kLlama2c: return "llama2.c checkpoint";
    case WeightFormat::kUnknown: break;
  }
  return "unknown";
}

void require_weight_format(const fs::path& path, WeightFormat want) {
  const WeightFormat f = sniff_weight_file(path);
  if (f == want) return;
  const std::string where = path.string() + ": ";
  if (f == WeightFormat::kGitLfsPointer)
    throw InputError(where + "is a Git LFS pointer (" + std::to_string(fs::file_size(path)) +
                     " bytes), not the weights: run `git lfs pull` in its repository");
  if (f == WeightFormat::kTorchLegacy)
    throw InputError(where + "is PyTorch's legacy (pre-1.6) pickle format, which is not read: convert it with "
                     "torch.save(torch.load(f), f) in a current PyTorch, or save_pretrained(safe_serialization=True)");
  throw InputError(where + "is " + (f == WeightFormat::kUnknown ? "not a weight file tallrec reads" : weight_format_name(f)) +
                   ", expected " + weight_format_name(want));
}

std::unique_ptr<TensorSource> open_tensor_file(const fs::path& path) {
  const WeightFormat f = sniff_weight_file(path);
  if (f == WeightFormat::kTorchZip) return std::make_unique<TorchCheckpointFile>(path);
  require_weight_format(path, WeightFormat::kSafetensors);
  return std::make_unique<SafetensorsSource>(path);
}

TorchCheckpointFile::TorchCheckpointFile(const fs::path& path) : path_(path) {
  require_weight_format(path, WeightFormat::kTorchZip);
  const std::string where = path.string() + ": ";
  c10::IValue value;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    value = torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"", std::nullopt, std::nullopt,
                                              at::Device(at::kCPU), reader);
  } catch (const c10::Error& e) {
    throw InputError(where + "not a readable torch.save file: " + e.what_without_backtrace());
  }
  if (!value.isGenericDict()) throw InputError(where + "holds a " + value.tagKind() + ", not a dict of tensors (a state_dict)");
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor())
      throw InputError(where + "holds an entry that is not name -> tensor (a state_dict is expected)");
    tensors_.emplace(item.key().toStringRef(), item.value().toTensor());
  }
}

std::vector<std::string> TorchCheckpointFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

at::Tensor TorchCheckpointFile::load(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& expected) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw InputError(path_.string() + ": missing tensor \"" + name + "\"");
  const at::Tensor& t = it->second;
  if (!expected.empty() && t.sizes() != at::IntArrayRef(expected))
    throw InputError(path_.string() + ": tensor \"" + name + "\" has shape " + shape_text(t.sizes()) + ", expected " +
                     shape_text(expected));
  return t.to(dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();  // the caller's own copy, as SafetensorsFile::load
}

}  // namespace tallrec
