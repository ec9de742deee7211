// Tokenized datasets cached by content. The key hashes the source file's bytes, the tokenizer
// model, the template, the cutoff, train_on_inputs and the few-shot subset, so a second request
// for the same data returns the same folder at once, and a changed file gets a new one.
#pragma once

#include <filesystem>
#include <optional>

#include "jobs/data/tokenize_records.h"

namespace tallrec {

std::filesystem::path cached_tokens(const Tokenizer& tokenizer,
                                    const std::filesystem::path& records,
                                    const TokenizeOptions& options,
                                    std::optional<FewShotSubset> subset,
                                    const std::filesystem::path& cache_dir);

}  // namespace tallrec
