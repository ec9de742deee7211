// Data-pipeline speed (issue goals: MovieLens-100K preparation < 2 s end to end; tokenizing the
// 10,000 movie records < 5 s on one core). Run: build/bench/tallrec_data_bench
// The Python peer for tokenization, side by side in one run: bench/tokenize_vs_python.py.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <numeric>

#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"

namespace tallrec {
namespace {

const std::filesystem::path kShared = TALLREC_SHARED_DIR;

void BM_PrepareMovieLensEndToEnd(benchmark::State& state) {
  const auto out = std::filesystem::temp_directory_path() / "tallrec-bench-movie";
  for (auto _ : state) {
    write_splits(out,
                 prepare_movielens(kShared / "data" / "ml-100k"));  // read, build, write 3 files
  }
  std::filesystem::remove_all(out);
}
BENCHMARK(BM_PrepareMovieLensEndToEnd)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_TokenizeAllMovieRecords(benchmark::State& state) {
  Tokenizer tokenizer(kShared / "models" / "llama-tokenizer" / "tokenizer.model");
  Splits s = prepare_movielens(kShared / "data" / "ml-100k");
  std::vector<PromptRecord> all = s.train;
  all.insert(all.end(), s.valid.begin(), s.valid.end());
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::vector<size_t> indices(all.size());
  std::iota(indices.begin(), indices.end(), 0);
  for (auto _ : state) {
    TokenizedArrays arrays;  // training and evaluation prompts of all 10,000 records
    tokenize_records(tokenizer, all, indices, {}, arrays);
    benchmark::DoNotOptimize(arrays.train_ids.data());
  }
  state.counters["records/s"] =
      benchmark::Counter(double(all.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TokenizeAllMovieRecords)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace tallrec

BENCHMARK_MAIN();
