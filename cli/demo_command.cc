// `tallrec demo`: the project's main job on one machine. It runs a small TALLRec grid for real:
// MovieLens-100K -> prompts -> few-shot subsets -> tokens (plus the Book-Crossing prompt
// files), then one `tallrec-train` process per grid point (tiny random LLaMA, CPU, a capped
// number of steps), and prints TALLRec's Table 1 layout. The coordinator, workers and
// dashboard that will run such grids at scale are not built yet (README, "What is missing").
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// tallrec-train lives next to this binary (both are built into the same folder).
fs::path trainer_path() {
  return fs::read_symlink("/proc/self/exe").parent_path() / "tallrec-train";
}

// Runs tallrec-train with `args`; returns its JSON events. Throws if it fails.
std::vector<nlohmann::json> run_trainer(const std::string& args) {
  const std::string cmd = shell_quote(trainer_path().string()) + " " + args;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw Error("cannot start " + trainer_path().string());
  std::vector<nlohmann::json> events;
  std::string line;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;
    if (line.front() == '{') events.push_back(nlohmann::json::parse(line, nullptr, false));
    line.clear();
  }
  int status = ::pclose(pipe);
  if (status != 0) {
    std::string reason = events.empty() ? "no output" : events.back().dump();
    throw Error("tallrec-train " + args + " failed (status " + std::to_string(status) + "): " + reason);
  }
  return events;
}

}  // namespace

void add_demo_command(CLI::App& app) {
  struct Args {
    std::string data = "../shared/data";
    std::string tokenizer = "../shared/models/llama-tokenizer/tokenizer.model";
    std::string work_dir = "out/demo";
    std::vector<int64_t> samples{16, 64};
    std::vector<uint64_t> seeds{0, 42};
    int64_t train_steps = 20;
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand("demo", "Run a small TALLRec grid on this machine: data, one tallrec-train per point, TALLRec's Table 1");
  demo->add_option("--data", args->data, "Folder holding ml-100k/ (and optionally book-crossing/)")->capture_default_str();
  demo->add_option("--tokenizer", args->tokenizer, "LLaMA SentencePiece model")->capture_default_str();
  demo->add_option("--work-dir", args->work_dir, "Where prompts and tokens are written")->capture_default_str();
  demo->add_option("--samples", args->samples, "Few-shot sample counts")->capture_default_str();
  demo->add_option("--seeds", args->seeds, "Seeds")->capture_default_str();
  demo->add_option("--train-steps", args->train_steps, "Optimizer steps per grid point (0: data only)")->capture_default_str();
  demo->callback([args] {
    const fs::path work = args->work_dir;
    const fs::path raw = fs::path(args->data) / "ml-100k";
    if (!fs::exists(raw / "u.data")) {
      throw InputError(raw.string() + ": no MovieLens-100K here; get it with `tallrec data fetch movielens-100k --out " +
                       args->data + "`");
    }
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    std::cout << "[1/4] MovieLens-100K -> TALLRec prompts\n";
    Splits movie = prepare_movielens(raw);
    write_splits(work / "movie", movie);
    std::cout << describe_splits(movie);

    Tokenizer tokenizer(args->tokenizer);
    TokenizeOptions options;  // TALLRec's: tallrec template, cutoff 512, train_on_inputs
    std::cout << "[2/4] Tokenizing (template tallrec, cutoff " << options.cutoff_len << ")\n";
    struct Row { std::string name; TokenizeSummary s; };
    std::vector<Row> rows;
    auto tokenize = [&](const std::string& name, const fs::path& src, std::optional<FewShotSubset> subset) {
      rows.push_back({name, tokenize_file(tokenizer, src, options, subset, work / "tokens" / name)});
    };
    tokenize("movie-valid", work / "movie" / "valid.json", std::nullopt);
    tokenize("movie-test", work / "movie" / "test.json", std::nullopt);
    tokenize("movie-valid-200", work / "movie" / "valid.json", FewShotSubset{200, 0});  // validation during training
    for (auto sample : args->samples)
      for (auto seed : args->seeds)
        tokenize("movie-train-s" + std::to_string(sample) + "-seed" + std::to_string(seed),
                 work / "movie" / "train.json", FewShotSubset{sample, seed});
    const fs::path book = fs::path(args->data) / "book-crossing";
    for (const char* split : {"valid", "test"}) {
      if (fs::exists(book / (std::string(split) + ".json"))) {
        tokenize(std::string("book-") + split, book / (std::string(split) + ".json"), std::nullopt);
      }
    }

    std::cout << "[3/4] Data summary (" << work.string() << ")\n";
    std::printf("  %-26s %8s %12s %8s %12s\n", "dataset", "records", "train tok", "longest", "eval tok");
    for (const auto& r : rows) {
      std::printf("  %-26s %8zu %12zu %8zu %12zu\n", r.name.c_str(), r.s.records, r.s.train_tokens,
                  r.s.max_train_length, r.s.eval_tokens);
    }
    std::printf("  answer ids: yes=%d no=%d; %.2f s in all\n", rows.front().s.answers.yes,
                rows.front().s.answers.no, elapsed());

    if (args->train_steps <= 0) return;
    std::cout << "[4/4] Rec-tuning the tiny LLaMA (random weights, LoRA q/v, TALLRec's recipe, " << args->train_steps
              << " steps per grid point)\n";
    const fs::path model = work / "model-tiny";
    if (!fs::exists(model / "config.json")) {
      run_trainer("init --preset tiny --seed 0 --out " + shell_quote(model.string()) + " > /dev/null");
    }
    std::map<std::string, std::map<int64_t, std::vector<double>>> table;  // test set -> sample -> AUC per seed
    std::vector<std::string> test_sets{"movie"};
    if (fs::exists(work / "tokens" / "book-test")) test_sets.push_back("book");
    for (auto sample : args->samples) {
      for (auto seed : args->seeds) {
        const std::string name = "movie-train-s" + std::to_string(sample) + "-seed" + std::to_string(seed);
        nlohmann::json spec = {{"base_model", model.string()},
                               {"train_tokens", (work / "tokens" / name).string()},
                               {"valid_tokens", (work / "tokens" / "movie-valid-200").string()},
                               {"test_tokens", nlohmann::json::object()},
                               {"seed", seed},
                               {"micro_batch_size", 16},
                               {"max_steps", args->train_steps}};
        for (const auto& t : test_sets) spec["test_tokens"][t] = (work / "tokens" / (t + "-test")).string();
        const fs::path run_dir = work / "runs" / name;
        fs::create_directories(run_dir);
        write_file_atomically(run_dir / "spec.json", spec.dump(2) + "\n");
        auto events = run_trainer("train --spec " + shell_quote((run_dir / "spec.json").string()) + " --out " +
                                  shell_quote(run_dir.string()) + " 2>&1");
        const auto& done = events.back();
        std::printf("  %-24s best val AUC %.4f at step %lld;", name.c_str(), done["best_val_auc"].get<double>(),
                    static_cast<long long>(done["best_step"].get<int64_t>()));
        for (const auto& t : test_sets) {
          double auc = done["test_auc"][t].get<double>();
          table[t][sample].push_back(auc);
          std::printf(" test %s %.4f", t.c_str(), auc);
        }
        std::printf("\n");
      }
    }
    std::printf("  TALLRec Table 1 layout (train: movie; AUC mean +- std over seeds):\n  %-8s", "test");
    for (auto sample : args->samples) std::printf(" %18s", ("sample " + std::to_string(sample)).c_str());
    std::printf("\n");
    for (const auto& t : test_sets) {
      std::printf("  %-8s", t.c_str());
      for (auto sample : args->samples) {
        const auto& v = table[t][sample];
        double mean = 0, var = 0;
        for (double x : v) mean += x / double(v.size());
        for (double x : v) var += (x - mean) * (x - mean) / double(v.size());
        std::printf("    %.4f +- %.4f", mean, std::sqrt(var));
      }
      std::printf("\n");
    }
    std::printf("  (a randomly initialised tiny model trained for a few steps: AUC near 0.5 is what to expect;\n"
                "   real runs start from LLaMA weights. Runs, events and adapters: %s)\n", (work / "runs").c_str());
    std::printf("  %.1f s in all\n", elapsed());
  });
}

}  // namespace tallrec
