#include "common/weight_format.h"

#include <cstdint>
#include <cstring>
#include <fstream>

#include "common/error.h"

namespace tallrec {
namespace fs = std::filesystem;

WeightFormat sniff_weight_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open");
  char head[64] = {};
  in.read(head, sizeof head);
  const size_t got = size_t(in.gcount());
  const std::string_view h(head, got);
  if (h.rfind("PK\x03\x04", 0) == 0) return WeightFormat::kTorchZip;
  if (h.rfind("version https://git-lfs", 0) == 0) return WeightFormat::kGitLfsPointer;
  if (got >= 2 && uint8_t(head[0]) == 0x80 && uint8_t(head[1]) <= 5)
    return WeightFormat::kTorchLegacy;
  if (got >= 9) {
    uint64_t n = 0;
    std::memcpy(&n, head, 8);
    if (n > 1 && n + 8 <= fs::file_size(path) && head[8] == '{') return WeightFormat::kSafetensors;
  }
  return WeightFormat::kUnknown;
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kSafetensors:
      return "safetensors";
    case WeightFormat::kTorchZip:
      return "PyTorch torch.save (zip)";
    case WeightFormat::kTorchLegacy:
      return "PyTorch legacy (pre-1.6) pickle";
    case WeightFormat::kGitLfsPointer:
      return "Git LFS pointer";
    case WeightFormat::kLlama2c:
      return "llama2.c checkpoint";
    case WeightFormat::kUnknown:
      break;
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
    throw InputError(
        where +
        "is PyTorch's legacy (pre-1.6) pickle format, which is not read: convert it with "
        "torch.save(torch.load(f), f) in a current PyTorch, or "
        "save_pretrained(safe_serialization=True)");
  throw InputError(
      where + "is " +
      (f == WeightFormat::kUnknown ? "not a weight file tallrec reads" : weight_format_name(f)) +
      ", expected " + weight_format_name(want));
}

}  // namespace tallrec
