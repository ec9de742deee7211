// MovieLens-100K -> TALLRec prompt records, reproducing TALLRec's preprocess_movie.py:
//   - users in order of first appearance in u.data; each user's ratings stably sorted by the
//     timestamp *string* (TALLRec compares strings; all ml-100k stamps have 9 digits);
//   - for every position i >= 10 a window: the 10 previous movies are the history, movie i the
//     target; rating > 3 is a like;
//   - the last 10,000 windows, split 80/10/10 in order (int(n*0.8), int(n*0.9));
//   - titles from u.item (Latin-1), looked up by line position (movie id - 1).
#pragma once

#include <filesystem>

#include "jobs/data/interaction_record.h"
#include "jobs/data/splits.h"

namespace tallrec {

struct MovieLensOptions {
  size_t history_length = kTallrecHistoryLength;
  size_t max_windows = 10000;  // TALLRec keeps the last 10,000 windows
};

// Reads `raw_dir`/u.data and `raw_dir`/u.item. Throws InputError naming file and line for a
// missing file, a wrong column count, a bad number, an unknown movie id or a bad encoding.
Splits prepare_movielens(const std::filesystem::path& raw_dir,
                         const MovieLensOptions& options = {});

}  // namespace tallrec
