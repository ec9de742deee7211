// torch.save zip files (`pytorch_model*.bin`, PEFT 0.3's `adapter_model.bin`) through the
// trainer's reader (jobs/train/weight_files.h), libtorch's zip reader and unpickler included:
// InputError only, and every tensor of a file that opens can be loaded.
#include <cstdint>

#include <ATen/ATen.h>

#include "common/error.h"
#include "jobs/train/weight_files.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tallrec::fuzz::scratch_dir() / "adapter_model.bin";
  tallrec::fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto file = tallrec::open_tensor_file(path);
    for (const auto& name : file->names()) (void)file->load(name, at::kFloat);
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
