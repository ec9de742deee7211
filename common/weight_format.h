// What kind of weight file a path holds, from its first bytes (no torch needed, so the CLI's
// pre-flight check and tallrec-train tell formats apart the same way).
#pragma once

#include <filesystem>
#include <string>

namespace tallrec {

enum class WeightFormat {
  kSafetensors,
  kTorchZip,
  kTorchLegacy,
  kGitLfsPointer,
  kLlama2c,
  kUnknown
};

// "PK\3\4" torch zip; pickle protocol 2 (0x80 0x02) legacy torch.save; "version https://git-lfs" a
// pointer; a plausible safetensors header length followed by '{'; else unknown. (llama2.c
// checkpoints have no magic: kLlama2c is never sniffed, only named.) InputError if unreadable.
WeightFormat sniff_weight_file(const std::filesystem::path& path);
const char* weight_format_name(WeightFormat f);

// Throws InputError naming the file when it is an LFS pointer or legacy pickle (with the fix),
// or not `want`.
void require_weight_format(const std::filesystem::path& path, WeightFormat want);

}  // namespace tallrec
