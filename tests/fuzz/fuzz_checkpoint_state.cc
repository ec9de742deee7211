// A checkpoint's state.json and optimizer.safetensors (jobs/train/checkpoint.h), as a resumed
// run reads them: InputError only, never a bare JSON or libtorch exception.
#include <cstdint>

#include "common/error.h"
#include "jobs/train/checkpoint.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = tallrec::fuzz::scratch_dir() / "step-00000001";
  std::filesystem::create_directories(dir);
  const auto [state, optimizer] = tallrec::fuzz::split_in_two(data, size);
  tallrec::fuzz::write_bytes(dir / "state.json", state);
  tallrec::fuzz::write_bytes(dir / "optimizer.safetensors", optimizer);
  try {
    (void)tallrec::read_checkpoint(dir, /*parameter_count=*/2);
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
