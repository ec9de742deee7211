// An HF tokenizer.json and a text to encode with it (jobs/data/tokenizer_json.h), one input split
// in two (fuzz_files.h): InputError only (an unsupported part, a regex that does not compile or
// gives up, text that is not UTF-8); every id it gives is a token of the file.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "jobs/data/tokenizer_json.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [file, text] = tallrec::fuzz::split_in_two(data, size);
  const auto path = tallrec::fuzz::scratch_dir() / "tokenizer.json";
  tallrec::fuzz::write_bytes(path, file);
  try {
    const tallrec::JsonTokenizer tokenizer(path);
    for (const std::string_view t : {text, std::string_view("### Response:\nYes.")}) {
      try {
        for (const int32_t id : tokenizer.encode(t))
          if (id < 0 || tokenizer.piece(id).empty()) std::abort();
      } catch (const tallrec::InputError&) {
      }
    }
  } catch (const tallrec::InputError&) {
  }
  return 0;
}
