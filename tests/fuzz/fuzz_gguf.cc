// A GGUF file (common/gguf_file.h): InputError only; a file it opens has every tensor inside it,
// and each tensor of a supported type dequantizes to exactly its element count.
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "common/gguf_file.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tallrec::fuzz::scratch_dir() / "model.gguf";
  tallrec::fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const tallrec::GgufFile file(path);
    for (const auto& t : file.tensors()) {
      if (t.offset > size || t.bytes > size - t.offset) std::abort();
      try {
        if (file.dequantize(t).size() != size_t(t.elements)) std::abort();
      } catch (const tallrec::InputError&) {  // an unsupported type: refused by name
      }
    }
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
