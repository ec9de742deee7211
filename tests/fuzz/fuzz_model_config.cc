// A model's config.json (common/model_config.h): InputError only, and a config it accepts
// has shapes whose products do not overflow (what the trainer allocates from).
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "common/model_config.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tallrec::fuzz::scratch_dir() / "config.json";
  tallrec::fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const tallrec::LlamaConfig c = tallrec::read_llama_config(path);
    int64_t product = 0;
    if (__builtin_mul_overflow(c.vocab_size, c.hidden_size, &product) ||
        __builtin_mul_overflow(c.intermediate_size, c.hidden_size, &product) || c.head_dim() <= 0)
      std::abort();
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
