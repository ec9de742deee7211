// `tallrec demo`: the project's main job on one machine. Today it runs the data half of a
// TALLRec sweep for real (MovieLens-100K -> prompts -> few-shot subsets -> tokens, plus the
// Book-Crossing prompt files) and prints a summary; training and the sweep runner are not
// built yet (see README, "What is missing").
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"

namespace tallrec {
namespace fs = std::filesystem;

void add_demo_command(CLI::App& app) {
  struct Args {
    std::string data = "../shared/data";
    std::string tokenizer = "../shared/models/llama-tokenizer/tokenizer.model";
    std::string work_dir = "out/demo";
    std::vector<int64_t> samples{16, 64};
    std::vector<uint64_t> seeds{0, 42};
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand("demo", "Prepare and tokenize a small TALLRec grid's data on this machine, then summarise");
  demo->add_option("--data", args->data, "Folder holding ml-100k/ (and optionally book-crossing/)")->capture_default_str();
  demo->add_option("--tokenizer", args->tokenizer, "LLaMA SentencePiece model")->capture_default_str();
  demo->add_option("--work-dir", args->work_dir, "Where prompts and tokens are written")->capture_default_str();
  demo->add_option("--samples", args->samples, "Few-shot sample counts")->capture_default_str();
  demo->add_option("--seeds", args->seeds, "Seeds")->capture_default_str();
  demo->callback([args] {
    const fs::path work = args->work_dir;
    const fs::path raw = fs::path(args->data) / "ml-100k";
    if (!fs::exists(raw / "u.data")) {
      throw InputError(raw.string() + ": no MovieLens-100K here; get it with `tallrec data fetch movielens-100k --out " +
                       args->data + "`");
    }
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    std::cout << "[1/3] MovieLens-100K -> TALLRec prompts\n";
    Splits movie = prepare_movielens(raw);
    write_splits(work / "movie", movie);
    std::cout << describe_splits(movie);

    Tokenizer tokenizer(args->tokenizer);
    TokenizeOptions options;  // TALLRec's: tallrec template, cutoff 512, train_on_inputs
    std::cout << "[2/3] Tokenizing (template tallrec, cutoff " << options.cutoff_len << ")\n";
    struct Row { std::string name; TokenizeSummary s; };
    std::vector<Row> rows;
    auto tokenize = [&](const std::string& name, const fs::path& src, std::optional<FewShotSubset> subset) {
      rows.push_back({name, tokenize_file(tokenizer, src, options, subset, work / "tokens" / name)});
    };
    tokenize("movie-valid", work / "movie" / "valid.json", std::nullopt);
    tokenize("movie-test", work / "movie" / "test.json", std::nullopt);
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

    std::cout << "[3/3] Summary (" << work.string() << ")\n";
    std::printf("  %-26s %8s %12s %8s %12s\n", "dataset", "records", "train tok", "longest", "eval tok");
    for (const auto& r : rows) {
      std::printf("  %-26s %8zu %12zu %8zu %12zu\n", r.name.c_str(), r.s.records, r.s.train_tokens,
                  r.s.max_train_length, r.s.eval_tokens);
    }
    std::printf("  answer ids: yes=%d no=%d; %.2f s in all\n", rows.front().s.answers.yes,
                rows.front().s.answers.no, elapsed());
    std::cout << "  Training (tallrec-train), the coordinator and the dashboard are not built yet.\n";
  });
}

}  // namespace tallrec
