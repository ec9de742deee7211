// Coordinator store speed (issue goal: submitting a 10,000-run grid < 1 s).
// Run: build/bench/tallrec_store_bench
#include <benchmark/benchmark.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "coordinator/grid.h"
#include "coordinator/store.h"

namespace tallrec {
namespace {

std::string grid_10k() {
  nlohmann::json samples = nlohmann::json::array(), seeds = nlohmann::json::array();
  for (int s = 1; s <= 50; ++s) samples.push_back(s * 16);
  for (int s = 0; s < 100; ++s) seeds.push_back(s);
  nlohmann::json g = {{"name", "ten-thousand"},
                      {"base_model", "/m"},
                      {"tokenizer", "/t"},
                      {"datasets",
                       {{"movie", {{"train", "a"}, {"valid", "b"}, {"test", "c"}}},
                        {"book", {{"train", "d"}, {"valid", "e"}, {"test", "f"}}}}},
                      {"domains", {"movie", "book"}},
                      {"samples", samples},
                      {"seeds", seeds}};
  return g.dump();
}

void BM_Submit10kRunGrid(benchmark::State& state) {
  const std::string text = grid_10k();
  const auto db = std::filesystem::temp_directory_path() / "tallrec-bench-store.db";
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
    state.ResumeTiming();
    Store store(db);
    auto r = store.queue.submit(parse_grid(text, "grid"));  // parse, expand, hash, one transaction
    if (r.added != 10000) state.SkipWithError("expected 10,000 runs");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
}
BENCHMARK(BM_Submit10kRunGrid)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
}  // namespace tallrec

BENCHMARK_MAIN();
