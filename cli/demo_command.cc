// `tallrec demo`: the project's main job on one machine, through the same pieces a lab's sweep
// uses: MovieLens-100K -> prompts; a grid submitted to a SQLite store; the coordinator's broker
// serving it over ZeroMQ on 127.0.0.1 to two `tallrec worker` processes, which prepare each
// run's data (token cache), train it with `tallrec-train` (tiny random LLaMA, CPU, a capped
// number of steps) and report back; then TALLRec's Table 1 from the store.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/stop_signals.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/results.h"
#include "coordinator/store.h"
#include "jobs/data/movielens.h"
#include "jobs/data/tokenize_records.h"
#include "worker/trainer_process.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

void wait_for_interrupt() {
  const std::atomic<bool>& interrupted = stop_on_signals();
  while (!interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

void add_demo_command(CLI::App& app) {
  struct Args {
    std::string data = "../shared/data";
    std::string tokenizer = "../shared/models/llama-tokenizer/tokenizer.model";
    std::string model;  // "": the tiny random LLaMA
    std::string work_dir = "out/demo";
    std::vector<int64_t> samples{16, 64};
    std::vector<uint64_t> seeds{0, 42};
    int64_t train_steps = 20;
    int64_t valid_sample = 200;
    int64_t test_sample = 0;  // 0: every test prompt
    int threads = 1;
    int workers = 2;
    std::string http = "127.0.0.1:8080";
    bool no_wait = false;
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand("demo",
                                  "Run a small TALLRec grid on this machine: data, one "
                                  "tallrec-train per point, TALLRec's Table 1");
  demo->add_option("--data", args->data, "Folder holding ml-100k/ (and optionally book-crossing/)")
      ->capture_default_str();
  auto* tokenizer_option =
      demo->add_option(
              "--tokenizer", args->tokenizer,
              "Tokenizer (tokenizer.model, tokenizer.json or a model folder); with --model: "
              "the model folder's own")
          ->capture_default_str();
  demo->add_option("--model", args->model,
                   "Run the grid on this HF model folder (e.g. one `tallrec-train import-gguf` "
                   "wrote) instead of the tiny random LLaMA; its runs are the sweep demo-<folder>");
  demo->add_option("--work-dir", args->work_dir,
                   "Where prompts, tokens, the store and runs are written")
      ->capture_default_str();
  demo->add_option("--samples", args->samples, "Few-shot sample counts")->capture_default_str();
  demo->add_option("--seeds", args->seeds, "Seeds")->capture_default_str();
  demo->add_option("--train-steps", args->train_steps, "Optimizer steps per grid point")
      ->capture_default_str();
  demo->add_option("--valid-sample", args->valid_sample,
                   "Validate on this many movie validation prompts")
      ->capture_default_str();
  demo->add_option("--test-sample", args->test_sample,
                   "Score this many prompts of each test set (a seeded subset, the same for every "
                   "run); 0: all of them, as TALLRec (a real model on a CPU: try 200)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  demo->add_option("--workers", args->workers,
                   "Worker processes, each training one run at a time (a real model's trainer "
                   "takes GBs of memory: one worker may be all a small machine holds)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  demo->add_option("--threads", args->threads, "Threads per worker")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  demo->add_option("--http", args->http,
                   "ADDRESS:PORT of the dashboard (port 0: any free one), or off")
      ->capture_default_str();
  demo->add_flag("--no-wait", args->no_wait,
                 "Exit after the table instead of serving the dashboard until Ctrl-C");
  demo->callback([args, tokenizer_option] {
    if (args->http != "off" && !only_this_host(args->http))
      throw InputError("demo: --http " + args->http +
                       " is reachable from other hosts: the demo serves only this one (e.g. "
                       "127.0.0.1:8080; `tallrec coordinator` for more)");
    if (!args->model.empty()) {
      args->model = fs::absolute(args->model).lexically_normal().string();
      if (!fs::exists(fs::path(args->model) / "config.json"))
        throw InputError(args->model + ": not a model folder (no config.json)");
      if (tokenizer_option->count() == 0) args->tokenizer = args->model;
    }
    // The tiny model's runs and another model's runs are sweeps of their own in one store.
    const std::string sweep =
        args->model.empty() ? "demo" : "demo-" + fs::path(args->model).filename().string();
    const fs::path work = fs::absolute(args->work_dir);
    const fs::path raw = fs::path(args->data) / "ml-100k";
    if (!fs::exists(raw / "u.data")) {
      throw InputError(
          raw.string() +
          ": no MovieLens-100K here; get it with `tallrec data fetch movielens-100k --out " +
          args->data + "`");
    }
    const auto t0 = std::chrono::steady_clock::now();

    std::cout << "[1/3] MovieLens-100K -> TALLRec prompts\n";
    Splits movie = prepare_movielens(raw);
    write_splits(work / "movie", movie);
    std::cout << describe_splits(movie);
    Tokenizer tokenizer(args->tokenizer);
    const AnswerIds answers = lookup_answer_ids(tokenizer);

    std::cout << "[2/3] Sweep: grid -> store (" << (work / "tallrec.db").string()
              << ") -> coordinator -> " << args->workers << " worker(s)\n";
    const fs::path model = args->model.empty() ? work / "model-tiny" : fs::path(args->model);
    if (args->model.empty() && !fs::exists(model / "config.json")) {
      const ProcessResult init = run_process({find_trainer().string(), "init", "--preset", "tiny",
                                              "--seed", "0", "--out", model.string()},
                                             "", 600);
      if (init.exit_code != 0) throw Error("tallrec-train init failed: " + init.err);
    }
    nlohmann::json grid = {
        {"name", sweep},
        {"base_model", model.string()},
        {"tokenizer", fs::absolute(args->tokenizer).string()},
        {"datasets",
         {{"movie",
           {{"train", (work / "movie/train.json").string()},
            {"valid", (work / "movie/valid.json").string()},
            {"test", (work / "movie/test.json").string()}}}}},
        {"domains", {"movie"}},
        {"test_domains", {"movie"}},
        {"samples", args->samples},
        {"seeds", args->seeds},
        {"valid_sample", args->valid_sample},
        {"hyper", {{"micro_batch_size", {16}}, {"max_steps", {args->train_steps}}}},
        {"max_attempts", 1}};
    if (args->test_sample > 0) grid["test_sample"] = args->test_sample;
    const fs::path book_test = fs::path(args->data) / "book-crossing" / "test.json";
    if (fs::exists(book_test)) {  // cross-domain: TALLRec's released book test prompts
      grid["datasets"]["book"] = {{"test", fs::absolute(book_test).string()}};
      grid["test_domains"].push_back("book");
    }
    Store store(work / "tallrec.db");
    SubmitResult submitted = store.queue.submit(parse_grid(grid.dump(), sweep + " grid"));
    std::printf("  %zu runs submitted (%zu already in the store)\n", submitted.added,
                submitted.existing);
    // The coordinator (broker and dashboard) serves the store from this process; two worker
    // processes take the runs over ZeroMQ on 127.0.0.1, each running tallrec-train per run.
    CoordinatorOptions options;
    options.db = work / "tallrec.db";
    options.listen = "tcp://127.0.0.1:*";
    options.http = args->http;
    CoordinatorService coordinator(options);
    std::atomic<bool> stop{false};
    std::thread serving([&] { coordinator.serve(stop); });
    std::printf("  coordinator on %s; %d worker%s\n", coordinator.zmq_endpoint().c_str(),
                args->workers, args->workers == 1 ? "" : "s");
    if (!coordinator.http_url().empty())
      std::printf("  dashboard: %s  (API token in %s)\n", coordinator.http_url().c_str(),
                  coordinator.options().token_file.c_str());
    std::fflush(stdout);
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    // Every worker at once, each its own process; what they print goes to worker-N.log.
    std::vector<std::pair<pid_t, fs::path>> workers;
    for (int w = 1; w <= args->workers; ++w) {
      const fs::path dir = work / ("worker-" + std::to_string(w));
      fs::create_directories(dir);
      workers.emplace_back(
          start_process({self, "worker", "--coordinator", coordinator.zmq_endpoint(), "--id",
                         "demo-worker-" + std::to_string(w), "--work-dir", dir.string(),
                         "--exit-when-idle", "--threads", std::to_string(args->threads)},
                        work / ("worker-" + std::to_string(w) + ".log")),
          work / ("worker-" + std::to_string(w) + ".log"));
    }
    for (const auto& [pid, log] : workers)
      if (const int rc = wait_process(pid); rc != 0)
        std::printf("  a worker exited with status %d (its log: %s)\n", rc, log.c_str());
    for (const auto& [spec, done] : store.views.results(sweep)) {
      char name[64];
      std::snprintf(name, sizeof name, "%s-s%lld-seed%llu",
                    spec["domain"].get<std::string>().c_str(),
                    static_cast<long long>(spec["sample"].get<int64_t>()),
                    static_cast<unsigned long long>(spec["seed"].get<uint64_t>()));
      std::printf("  %-20s best val AUC %.4f at step %lld;", name,
                  done["best_val_auc"].get<double>(),
                  static_cast<long long>(done["best_step"].get<int64_t>()));
      for (const auto& [test, auc] : done["test_auc"].items())
        std::printf(" test %s %.4f", test.c_str(), auc.get<double>());
      std::printf("\n");
    }
    for (const auto& row : store.views.runs(sweep, RunState::kFailed))
      std::printf("  run %lld failed\n", static_cast<long long>(row.id));

    std::cout << "[3/3] TALLRec Table 1 layout (AUC mean +- std over seeds; also `tallrec results "
              << sweep << " --db " << (work / "tallrec.db").string() << "`)\n";
    std::cout << format_results_table(build_results_table(store.views.run_outcomes(sweep)));
    std::printf("  model: %s; answer ids: yes=%d no=%d.\n", model.c_str(), answers.yes, answers.no);
    if (args->model.empty())
      std::printf(
          "  A randomly initialised tiny model trained for a few steps: AUC near 0.5 is what to\n"
          "  expect; real runs start from pretrained weights (--model DIR).\n");
    std::printf("  Runs, events and adapters: %s/worker-*/runs\n", work.c_str());
    std::printf("  %.1f s in all\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!args->no_wait && !coordinator.http_url().empty()) {
      std::printf("The dashboard stays up at %s until Ctrl-C.\n", coordinator.http_url().c_str());
      std::fflush(stdout);
      wait_for_interrupt();
    }
    stop = true;
    serving.join();
  });
}

}  // namespace tallrec
