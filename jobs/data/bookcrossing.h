// Book-Crossing (BX-Book-Ratings.csv, BX-Books.csv) -> TALLRec prompt records, reproducing
// TALLRec's preprocess_book.py as it ran (pandas 1.x) and as its released files read:
//   - both CSVs: ';'-separated, quoted, Latin-1; BX-Books rows with too many fields are skipped
//     with a warning (TALLRec passed error_bad_lines=False), rows with too few are padded;
//   - ratings inner-joined with books on ISBN in pandas 1.x order: grouped by ISBN in order of
//     the ISBN's first appearance in the ratings file, ratings in file order within a group;
//   - users in order of first appearance in that join; users with more than 3 ratings kept;
//   - users split 80/10/10 after Python's random.shuffle, which TALLRec left unseeded and we
//     seed with `seed` (random.seed(seed) first);
//   - per user: random.seed(42); random.shuffle of the user's ratings; the last one is the
//     target, the first min(n-1, 10) are the history; rating > 5 is a like;
//   - history item: "TITLE" written by AUTHOR; target: "\"TITLE\" written by AUTHOR" in quotes,
//     as in TALLRec's released valid/test files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "jobs/data/interaction_record.h"
#include "jobs/data/splits.h"

namespace tallrec {

struct BookCrossingOptions {
  uint64_t split_seed = 0;  // seeds the user shuffle (TALLRec: unseeded)
  size_t max_history = kTallrecHistoryLength;
  int min_ratings_exclusive = 3;  // TALLRec: users with more than 3 ratings
  // Receives warnings such as skipped malformed rows ("BX-Books.csv:6452: skipped: ...").
  std::function<void(const std::string&)> warn = nullptr;
};

Splits prepare_bookcrossing(const std::filesystem::path& raw_dir,
                            const BookCrossingOptions& options);

}  // namespace tallrec
