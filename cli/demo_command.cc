// `tallrec demo`: the project's main job on one machine, through the same pieces a lab's sweep
// uses: MovieLens-100K -> prompts; a grid submitted to a SQLite store; each run leased from
// the store, its data tokenized (cached by content), one `tallrec-train` process trained
// (tiny random LLaMA, CPU, a capped number of steps) and its result recorded; then TALLRec's
// Table 1 from the store. What is missing is the network between store and trainers: the
// coordinator process and remote workers (README, "What is missing").
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "coordinator/results.h"
#include "coordinator/store.h"
#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"
#include "worker/prepare_run.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// tallrec-train lives next to this binary (both are built into the same folder).
fs::path trainer_path() { return fs::read_symlink("/proc/self/exe").parent_path() / "tallrec-train"; }

// Runs tallrec-train with `args`; returns its exit status and JSON events.
std::pair<int, std::vector<nlohmann::json>> run_trainer(const std::string& args) {
  const std::string cmd = shell_quote(trainer_path().string()) + " " + args;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw Error("cannot start " + trainer_path().string());
  std::vector<nlohmann::json> events;
  std::string line;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    line += buf;
    if (line.back() != '\n') continue;
    if (line.front() == '{') events.push_back(nlohmann::json::parse(line, nullptr, false));
    line.clear();
  }
  return {::pclose(pipe), events};
}

double now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

}  // namespace

void add_demo_command(CLI::App& app) {
  struct Args {
    std::string data = "../shared/data";
    std::string tokenizer = "../shared/models/llama-tokenizer/tokenizer.model";
    std::string work_dir = "out/demo";
    std::vector<int64_t> samples{16, 64};
    std::vector<uint64_t> seeds{0, 42};
    int64_t train_steps = 20;
    int64_t valid_sample = 200;
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand("demo", "Run a small TALLRec grid on this machine: data, one tallrec-train per point, TALLRec's Table 1");
  demo->add_option("--data", args->data, "Folder holding ml-100k/ (and optionally book-crossing/)")->capture_default_str();
  demo->add_option("--tokenizer", args->tokenizer, "LLaMA SentencePiece model")->capture_default_str();
  demo->add_option("--work-dir", args->work_dir, "Where prompts, tokens, the store and runs are written")->capture_default_str();
  demo->add_option("--samples", args->samples, "Few-shot sample counts")->capture_default_str();
  demo->add_option("--seeds", args->seeds, "Seeds")->capture_default_str();
  demo->add_option("--train-steps", args->train_steps, "Optimizer steps per grid point")->capture_default_str();
  demo->add_option("--valid-sample", args->valid_sample, "Validate on this many movie validation prompts")->capture_default_str();
  demo->callback([args] {
    const fs::path work = fs::absolute(args->work_dir);
    const fs::path raw = fs::path(args->data) / "ml-100k";
    if (!fs::exists(raw / "u.data")) {
      throw InputError(raw.string() + ": no MovieLens-100K here; get it with `tallrec data fetch movielens-100k --out " +
                       args->data + "`");
    }
    const auto t0 = std::chrono::steady_clock::now();

    std::cout << "[1/3] MovieLens-100K -> TALLRec prompts\n";
    Splits movie = prepare_movielens(raw);
    write_splits(work / "movie", movie);
    std::cout << describe_splits(movie);
    Tokenizer tokenizer(args->tokenizer);
    const AnswerIds answers = lookup_answer_ids(tokenizer);

    std::cout << "[2/3] Sweep: grid -> store (" << (work / "tallrec.db").string() << ") -> one tallrec-train per run\n";
    const fs::path model = work / "model-tiny";
    if (!fs::exists(model / "config.json")) {
      auto [status, events] = run_trainer("init --preset tiny --seed 0 --out " + shell_quote(model.string()));
      if (status != 0) throw Error("tallrec-train init failed");
    }
    nlohmann::json grid = {
        {"name", "demo"}, {"base_model", model.string()}, {"tokenizer", fs::absolute(args->tokenizer).string()},
        {"datasets", {{"movie", {{"train", (work / "movie/train.json").string()},
                                 {"valid", (work / "movie/valid.json").string()},
                                 {"test", (work / "movie/test.json").string()}}}}},
        {"domains", {"movie"}}, {"test_domains", {"movie"}}, {"samples", args->samples}, {"seeds", args->seeds},
        {"valid_sample", args->valid_sample}, {"hyper", {{"micro_batch_size", {16}}}}, {"max_attempts", 1}};
    const fs::path book_test = fs::path(args->data) / "book-crossing" / "test.json";
    if (fs::exists(book_test)) {  // cross-domain: TALLRec's released book test prompts
      grid["datasets"]["book"] = {{"test", fs::absolute(book_test).string()}};
      grid["test_domains"].push_back("book");
    }
    Store store(work / "tallrec.db");
    SubmitResult submitted = store.submit(parse_grid(grid.dump(), "demo grid"));
    std::printf("  %zu runs submitted (%zu already in the store)\n", submitted.added, submitted.existing);
    while (auto lease = store.lease_next("demo", now())) {
      const nlohmann::json& run = lease->spec;
      char name[64];
      std::snprintf(name, sizeof name, "%s-s%lld-seed%llu", run["domain"].get<std::string>().c_str(),
                    static_cast<long long>(run["sample"].get<int64_t>()),
                    static_cast<unsigned long long>(run["seed"].get<uint64_t>()));
      const fs::path run_dir = work / "runs" / name;
      const fs::path spec = prepare_run(run, tokenizer, work / "token-cache", run_dir,
                                        {{"max_steps", args->train_steps}});
      store.mark_running(lease->attempt_id, now());
      auto [status, events] = run_trainer("train --spec " + shell_quote(spec.string()) + " --out " +
                                          shell_quote(run_dir.string()) + " 2>&1");
      if (status == 0 && !events.empty() && events.back()["type"] == "finished") {
        const auto& done = events.back();
        store.finish(lease->attempt_id, done, now());
        std::printf("  %-20s best val AUC %.4f at step %lld;", name, done["best_val_auc"].get<double>(),
                    static_cast<long long>(done["best_step"].get<int64_t>()));
        for (const auto& [test, auc] : done["test_auc"].items()) std::printf(" test %s %.4f", test.c_str(), auc.get<double>());
        std::printf("\n");
      } else {
        const std::string reason = events.empty() ? "no events" : events.back().value("reason", events.back().dump());
        store.fail(lease->attempt_id, reason, /*retryable=*/false, now());
        std::printf("  %-20s failed: %s\n", name, reason.c_str());
      }
    }

    std::cout << "[3/3] TALLRec Table 1 layout (AUC mean +- std over seeds; also `tallrec results demo --db "
              << (work / "tallrec.db").string() << "`)\n";
    std::cout << format_results_table(build_results_table(store.results("demo")));
    std::printf("  answer ids: yes=%d no=%d. A randomly initialised tiny model trained for a few steps: AUC near 0.5\n"
                "  is what to expect; real runs start from LLaMA weights. Runs, events and adapters: %s\n",
                answers.yes, answers.no, (work / "runs").c_str());
    std::printf("  %.1f s in all\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace tallrec
