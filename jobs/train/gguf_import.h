// `tallrec-train import-gguf`: a llama-architecture GGUF file (llama.cpp's format) -> an HF model
// folder: config.json and model.safetensors (every tensor dequantized, q/k rows put back from
// GGUF's rotary layout into HF's), and tokenizer.json with tokenizer_config.json and
// generation_config.json from the file's tokenizer (a byte-level BPE: tokens, merges, types, and
// the pre-tokenizer its `tokenizer.ggml.pre` names). What is not supported is refused by name.
#pragma once

#include <filesystem>
#include <string>

#include "common/model_config.h"

namespace tallrec {

struct GgufImportSummary {
  LlamaConfig config;
  size_t tensors = 0;
  std::string tensor_types;  // e.g. "F32 x61, Q4_1 x210, Q8_0 x1"
  std::string pre_tokenizer;
};

// `dtype`: float32, float16 or bfloat16 (what model.safetensors stores). The folder is written
// under a temporary name and renamed into place: never half-written.
GgufImportSummary import_gguf(const std::filesystem::path& file, const std::filesystem::path& out,
                              const std::string& dtype);

}  // namespace tallrec
