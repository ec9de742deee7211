#include "jobs/train/weight_files.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>

#include "common/error.h"
#include "common/json_text.h"
#include "common/pickle_scan.h"
#include "jobs/train/safetensors.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const fs::path& path) : file_(path) {}
  bool contains(const std::string& name) const override { return file_.contains(name); }
  std::vector<std::string> names() const override { return file_.names(); }
  at::Tensor load(const std::string& name, at::ScalarType dtype,
                  const std::vector<int64_t>& shape) override {
    return file_.load(name, dtype, shape);
  }

 private:
  SafetensorsFile file_;
};

// The dtypes safetensors files may hold too: every one of them converts to the weights' dtype.
bool readable_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
    case at::kHalf:
    case at::kBFloat16:
    case at::kDouble:
    case at::kLong:
    case at::kInt:
    case at::kByte:
    case at::kChar:
    case at::kBool:
      return true;
    default:
      return false;
  }
}

// Whether a tensor's elements lie inside its storage. libtorch's unpickler takes sizes, strides
// and offset from the pickle as they are; a tensor reaching past its storage (fuzz_torch_bin: a
// [3] tensor over an empty storage) would be read out of bounds.
bool inside_storage(const at::Tensor& t) {
  if (t.numel() == 0) return true;
  if (t.storage_offset() < 0) return false;
  uint64_t last = uint64_t(t.storage_offset());  // the furthest element, in elements
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) < 0) return false;
    uint64_t reach = 0;
    if (__builtin_mul_overflow(uint64_t(t.size(d) - 1), uint64_t(t.stride(d)), &reach) ||
        __builtin_add_overflow(last, reach, &last))
      return false;
  }
  uint64_t bytes = 0;
  return !__builtin_add_overflow(last, uint64_t(1), &last) &&
         !__builtin_mul_overflow(last, uint64_t(t.element_size()), &bytes) &&
         bytes <= t.storage().nbytes();
}

}  // namespace

std::unique_ptr<TensorSource> open_tensor_file(const fs::path& path) {
  const WeightFormat f = sniff_weight_file(path);
  if (f == WeightFormat::kTorchZip) return std::make_unique<TorchCheckpointFile>(path);
  if (f == WeightFormat::kGitLfsPointer || f == WeightFormat::kTorchLegacy)
    require_weight_format(path, WeightFormat::kSafetensors);
  return std::make_unique<SafetensorsSource>(
      path);  // anything else: the safetensors reader says what is wrong with it
}

TorchCheckpointFile::TorchCheckpointFile(const fs::path& path) : path_(path) {
  require_weight_format(path, WeightFormat::kTorchZip);
  const std::string where = path.string() + ": ";
  c10::IValue value;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    // The pickle's declared lengths are checked before libtorch's unpickler allocates them.
    if (!reader.hasRecord("data.pkl"))
      throw InputError(where + "has no data.pkl (not a torch.save file)");
    if (reader.getRecordSize("data.pkl") >
        fs::file_size(path))  // torch.save stores, never compresses
      throw InputError(where + "data.pkl claims more bytes than the file has (damaged?)");
    const auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    check_pickle_lengths(std::string_view(static_cast<const char*>(pickle.get()), pickle_size),
                         path.string() + " (data.pkl)");
    value =
        torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                          std::nullopt, std::nullopt, at::Device(at::kCPU), reader);
  } catch (const c10::Error& e) {
    throw InputError(where + "not a readable torch.save file: " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {  // libtorch's unpickler allocates what a length field claims
                                     // before reading it
    throw InputError(
        where +
        "not a readable torch.save file: a length in it exceeds this machine's memory (damaged?)");
  } catch (const std::length_error&) {
    throw InputError(where +
                     "not a readable torch.save file: a length in it is impossible (damaged?)");
  }
  if (!value.isGenericDict())
    throw InputError(where + "holds a " + value.tagKind() +
                     ", not a dict of tensors (a state_dict)");
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor())
      throw InputError(where +
                       "holds an entry that is not name -> tensor (a state_dict is expected)");
    const at::Tensor& t = item.value().toTensor();
    if (!readable_dtype(t.scalar_type()))  // torch.save writes dtypes (UInt6, float8, complex ...)
                                           // no LLaMA weight has
      throw InputError(where + "tensor \"" + printable_utf8(item.key().toStringRef()) +
                       "\" has dtype " + c10::toString(t.scalar_type()) +
                       ", which tallrec does not read");
    if (t.layout() != at::kStrided || t.is_quantized())
      throw InputError(where + "tensor \"" + printable_utf8(item.key().toStringRef()) +
                       "\" is not a dense tensor, which tallrec does not read");
    if (!inside_storage(t))
      throw InputError(where + "tensor \"" + printable_utf8(item.key().toStringRef()) +
                       "\" reaches past the bytes of its storage (damaged?)");
    tensors_.emplace(item.key().toStringRef(), t);
  }
}

std::vector<std::string> TorchCheckpointFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

at::Tensor TorchCheckpointFile::load(const std::string& name, at::ScalarType dtype,
                                     const std::vector<int64_t>& expected) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw InputError(path_.string() + ": missing tensor \"" + name + "\"");
  if (!expected.empty() && it->second.sizes() != at::IntArrayRef(expected))
    throw InputError(path_.string() + ": tensor \"" + name + "\" has shape " +
                     shape_text(it->second.sizes()) + ", expected " + shape_text(expected));
  at::Tensor t = std::move(it->second);
  tensors_.erase(it);
  // A tensor that is a view into a storage other tensors share (torch.save keeps views) is
  // copied, so the caller's memory is its own; a whole storage of the right dtype is handed over.
  const bool own_storage = t.storage_offset() == 0 && t.is_contiguous() &&
                           t.storage().nbytes() == t.nbytes() && t.storage().use_count() == 1;
  if (own_storage && t.scalar_type() == dtype) return t;
  return t.to(dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();
}

}  // namespace tallrec
