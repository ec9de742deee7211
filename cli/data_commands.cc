// `tallrec data ...`: raw datasets -> prompt records -> tokens.
#include <chrono>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/fetch.h"
#include "common/error.h"
#include "common/json_text.h"
#include "jobs/data/bookcrossing.h"
#include "jobs/data/few_shot.h"
#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"

namespace tallrec {
namespace {

void add_prepare(CLI::App& data) {
  auto* prepare = data.add_subcommand(
      "prepare", "Raw dataset -> train/valid/test.json in TALLRec's prompt format");
  prepare->require_subcommand(1);

  struct MovieArgs {
    std::string raw, out;
  };
  auto movie = std::make_shared<MovieArgs>();
  auto* ml = prepare->add_subcommand(
      "movielens", "MovieLens-100K (u.data, u.item) -> prompts, identical to TALLRec's files");
  ml->add_option("--raw", movie->raw,
                 "Folder with u.data and u.item (get it with `tallrec data fetch movielens-100k`)")
      ->required();
  ml->add_option("--out", movie->out, "Output folder for train.json, valid.json, test.json")
      ->required();
  ml->callback([movie] {
    auto start = std::chrono::steady_clock::now();
    Splits splits = prepare_movielens(movie->raw);
    write_splits(movie->out, splits);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "MovieLens-100K -> " << movie->out << " (" << int(ms) << " ms)\n"
              << describe_splits(splits);
  });

  struct BookArgs {
    std::string raw, out;
    uint64_t seed = 0;
    bool quiet = false;
  };
  auto book = std::make_shared<BookArgs>();
  auto* bx = prepare->add_subcommand(
      "bookcrossing",
      "Book-Crossing (BX-Book-Ratings.csv, BX-Books.csv) -> prompts as TALLRec builds them");
  bx->add_option("--raw", book->raw, "Folder with BX-Book-Ratings.csv and BX-Books.csv")
      ->required();
  bx->add_option("--out", book->out, "Output folder for train.json, valid.json, test.json")
      ->required();
  bx->add_option(
        "--seed", book->seed,
        "Seed of the user split (TALLRec's is unseeded): random.seed(SEED) before random.shuffle")
      ->required();
  bx->add_flag("--quiet", book->quiet, "Do not list skipped malformed rows");
  bx->callback([book] {
    BookCrossingOptions options;
    options.split_seed = book->seed;
    size_t skipped = 0;
    options.warn = [&](const std::string& w) {
      ++skipped;
      if (!book->quiet) std::cerr << "warning: " << w << "\n";
    };
    Splits splits = prepare_bookcrossing(book->raw, options);
    write_splits(book->out, splits);
    std::cout << "Book-Crossing (split seed " << book->seed << ", " << skipped
              << " malformed rows skipped) -> " << book->out << "\n"
              << describe_splits(splits);
  });
}

void add_fetch(CLI::App& data) {
  auto* fetch =
      data.add_subcommand("fetch", "Download a raw dataset from its official source and verify it");
  fetch->require_subcommand(1);
  struct Args {
    std::string out;
    FetchOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* ml = fetch->add_subcommand(
      "movielens-100k", "GroupLens' ml-100k.zip: download, check SHA-256, unpack to OUT/ml-100k");
  ml->add_option("--out", args->out, "Folder to unpack into (creates OUT/ml-100k)")->required();
  ml->add_option("--url", args->options.url, "Archive URL (a mirror)")->capture_default_str();
  ml->add_option("--sha256", args->options.sha256, "Expected SHA-256 of the archive")
      ->capture_default_str();
  ml->callback([args] {
    args->options.progress = [](const std::string& s) { std::cerr << s << "\n"; };
    auto dir = fetch_movielens_100k(args->out, args->options);
    std::cout << dir.string() << "\n";
  });
}

void add_tokenize(CLI::App& data) {
  struct Args {
    std::string records, tokenizer, out, prompt_template = "tallrec";
    bool allow_unlabeled = false, allow_cut_answers = false;
    std::string special_ids = "llama";
    int64_t cutoff_len = 512, sample = -1;
    uint64_t seed = 0;
    bool train_on_inputs = true;
  };
  auto args = std::make_shared<Args>();
  auto* tok = data.add_subcommand(
      "tokenize", "Prompt records -> memory-mappable token arrays for tallrec-train");
  tok->add_option("--records", args->records, "Prompt JSON file (TALLRec's record format)")
      ->required();
  tok->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.model (SentencePiece), tokenizer.json (HF BPE), or a model folder")
      ->required();
  tok->add_option("--out", args->out, "Output folder (meta.json + tokens.bin)")->required();
  tok->add_option("--template", args->prompt_template,
                  "Prompt template: tallrec (byte-exact, with '# noqa: E501') or clean")
      ->capture_default_str();
  tok->add_option("--cutoff-len", args->cutoff_len,
                  "Truncate training sequences to this many tokens")
      ->capture_default_str();
  tok->add_option("--train-on-inputs", args->train_on_inputs,
                  "Loss on prompt tokens too (TALLRec: true); false masks them with -100")
      ->capture_default_str();
  tok->add_option("--special-ids", args->special_ids,
                  "llama (the tokenizer's own BOS and EOS: 1 and 2 for LLaMA) or decapoda (BOS = "
                  "EOS = 0, as TALLRec's pinned transformers 4.28 + decapoda tokenizer files did), "
                  "then overrides: bos=N|none, eos=N, pad=N (pad is 0 otherwise, TALLRec's); e.g. "
                  "llama,pad=2")
      ->capture_default_str();
  tok->add_flag("--allow-cut-answers", args->allow_cut_answers,
                "Tokenize even when --cutoff-len truncates every prompt before its answer (nothing "
                "can then be scored)");
  tok->add_flag("--allow-unlabeled", args->allow_unlabeled,
                "Keep records whose output is neither \"Yes.\" nor \"No.\" (they train; scoring "
                "leaves them out of the AUC); default: refuse them");
  auto* sample_option =
      tok->add_option("--sample", args->sample,
                      "Take TALLRec's few-shot subset of this size (-1: all, shuffled); without "
                      "--sample/--seed the file order is kept");
  auto* seed_option =
      tok->add_option("--seed", args->seed, "Seed of the few-shot subset, as TALLRec's `seed`");
  tok->callback([args, sample_option, seed_option] {
    Tokenizer tokenizer(args->tokenizer);
    TokenizeOptions options;
    options.prompt_template = parse_prompt_template(args->prompt_template);
    options.cutoff_len = args->cutoff_len;
    options.train_on_inputs = args->train_on_inputs;
    options.allow_unlabeled = args->allow_unlabeled;
    options.special_ids = args->special_ids;
    options.allow_cut_answers = args->allow_cut_answers;
    std::optional<FewShotSubset> subset;
    if (sample_option->count() > 0 || seed_option->count() > 0)
      subset = FewShotSubset{args->sample, args->seed};
    auto start = std::chrono::steady_clock::now();
    auto summary = tokenize_file(tokenizer, args->records, options, subset, args->out);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "%zu records -> %s: %zu training tokens (longest %zu), %zu eval tokens; "
        "answer ids yes=%d no=%d (%.2f s)\n",
        summary.records, args->out.c_str(), summary.train_tokens, summary.max_train_length,
        summary.eval_tokens, summary.answers.yes, summary.answers.no, s);
  });
}

// Texts in, ids out: a JSON list of strings on stdin, {"bos_id", "eos_id", "vocab_size", "ids"}
// on stdout, one id list per text (no BOS/EOS). For checking a tokenizer against HF's.
void add_encode(CLI::App& data) {
  auto tokenizer_path = std::make_shared<std::string>();
  auto* enc = data.add_subcommand(
      "encode",
      "Encode texts with a tokenizer: a JSON list of strings on stdin -> {bos_id, eos_id, "
      "vocab_size, ids} on stdout (ids without BOS/EOS)");
  enc->add_option("--tokenizer", *tokenizer_path,
                  "tokenizer.model, tokenizer.json, or a model folder with one of them")
      ->required();
  enc->callback([tokenizer_path] {
    Tokenizer tokenizer(*tokenizer_path);
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (input.size() > (size_t(1) << 30)) throw InputError("stdin: more than 1 GiB of texts");
    const nlohmann::json texts = parse_json_from_outside(input, "stdin");
    if (!texts.is_array()) throw InputError("stdin: expected a JSON list of strings");
    nlohmann::json ids = nlohmann::json::array();
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i].is_string())
        throw InputError("stdin: item " + std::to_string(i) + " is not a string");
      try {
        ids.push_back(tokenizer.encode(texts[i].get<std::string>()));
      } catch (const InputError& e) {
        throw InputError("stdin: item " + std::to_string(i) + ": " + e.what());
      }
    }
    std::cout << nlohmann::json{{"bos_id", tokenizer.bos_id()},
                                {"eos_id", tokenizer.eos_id()},
                                {"vocab_size", tokenizer.vocab_size()},
                                {"ids", ids}}
                     .dump()
              << "\n";
  });
}

void add_subset(CLI::App& data) {
  struct Args {
    std::string records, out;
    size_t count = 0;
    int64_t sample = -1;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  auto* subset = data.add_subcommand(
      "subset",
      "TALLRec's few-shot subset: shuffle(seed).select(range(sample)).shuffle(seed), as HF "
      "datasets does it");
  auto* records = subset->add_option("--records", args->records, "Prompt JSON file to draw from");
  auto* count =
      subset->add_option("--count", args->count, "Draw indices from 0..COUNT-1 instead of a file");
  records->excludes(count);
  subset->add_option("--sample", args->sample, "Subset size (-1: all, shuffled twice)")->required();
  subset->add_option("--seed", args->seed, "Seed")->required();
  subset->add_option("--out", args->out,
                     "Write the chosen records here (prompt JSON); without it, print the indices");
  subset->callback([args] {
    if (args->records.empty() && args->count == 0 && args->out.empty()) {
      throw InputError("give --records FILE or --count N");
    }
    std::vector<PromptRecord> records;
    size_t n = args->count;
    if (!args->records.empty()) {
      records = read_prompt_records(args->records);
      n = records.size();
    }
    auto indices = few_shot_indices(n, args->sample, args->seed);
    if (args->out.empty()) {
      std::cout << nlohmann::json(indices).dump() << "\n";
      return;
    }
    if (records.empty() && n > 0) throw InputError("--out needs --records");
    std::vector<PromptRecord> chosen;
    for (size_t i : indices) chosen.push_back(records[i]);
    write_prompt_records(args->out, chosen);
    std::cout << chosen.size() << " records -> " << args->out << "\n";
  });
}

}  // namespace

void add_data_commands(CLI::App& app) {
  auto* data =
      app.add_subcommand("data", "Prepare, fetch, tokenize and subset recommendation data");
  data->require_subcommand(1);
  add_prepare(*data);
  add_fetch(*data);
  add_tokenize(*data);
  add_encode(*data);
  add_subset(*data);
}

}  // namespace tallrec
