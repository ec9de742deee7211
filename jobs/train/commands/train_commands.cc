// train (one attempt, or the launcher of its data-parallel ranks) and batches (the order it
// visits the records, for the oracles).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/run_spec.h"
#include "jobs/data/token_file.h"
#include "jobs/train/baselines/baseline_trainer.h"
#include "jobs/train/commands/commands.h"
#include "jobs/train/data_order.h"
#include "jobs/train/preemption.h"
#include "jobs/train/trainer.h"

namespace tallrec {
namespace {

void add_train(TrainerCli& cli) {
  struct Args {
    std::string spec, out, rendezvous;
    int rank = -1;
  };
  auto args = std::make_shared<Args>();
  auto* train = cli.app.add_subcommand(
      "train",
      "Run one attempt: TALLRec LoRA rec-tuning (resumes from OUT's newest checkpoint), or a "
      "Table 1 baseline when the spec names a method (schemas/baseline_spec.schema.json)");
  train->add_option("--spec", args->spec, "Run spec JSON (schemas/run_spec.schema.json)")
      ->required();
  train->add_option("--out", args->out, "Output folder: events.jsonl, checkpoints/, adapter/")
      ->required();
  train->add_option(
      "--rank", args->rank,
      "This process's rank when world_size > 1 (without it, all ranks are started here)");
  train->add_option("--rendezvous", args->rendezvous,
                    "FileStore path shared by the ranks (with --rank)");
  train->callback([args, &cli] {
    if (cli.app.get_option("--device")->count() > 0)
      throw InputError("train takes its device from the spec (\"device\"), not from --device");
    // A spec that names a method other than the LLM is a Table 1 baseline's.
    const nlohmann::json raw = parse_json_from_outside(read_file(args->spec), args->spec);
    if (spec_method(raw, args->spec) != Method::kLlm) {
      BaselineSpec baseline = parse_baseline_spec(raw, args->spec);
      if (cli.threads > 0) baseline.threads = cli.threads;
      install_preemption_handlers();
      cli.exit_code = run_baseline(baseline, args->out);
      return;
    }
    RunSpec spec = read_run_spec(args->spec);
    if (cli.threads > 0) spec.threads = cli.threads;
    const bool launcher = spec.world_size > 1 && args->rank < 0;
    install_preemption_handlers(/*interrupt_waits=*/launcher);
    cli.exit_code = launcher
                        ? launch_ranks(std::filesystem::read_symlink("/proc/self/exe").string(),
                                       args->spec, spec, args->out)
                        : run_training(spec, args->out, std::max(args->rank, 0), args->rendezvous);
  });
}

void add_batches(TrainerCli& cli) {
  struct Args {
    std::string spec;
    int64_t epochs = 1;
  };
  auto args = std::make_shared<Args>();
  auto* batches = cli.app.add_subcommand(
      "batches",
      "The records of every micro-batch, epoch by epoch, in the order `train` visits them");
  batches
      ->add_option("--spec", args->spec,
                   "Run spec JSON (its train_tokens, data_order, seeds, batch sizes)")
      ->required();
  batches->add_option("--epochs", args->epochs, "Epochs to print")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  batches->callback([args] {
    const RunSpec spec = read_run_spec(args->spec);
    TokenizedDataset data(spec.train_tokens);
    const int64_t n = int64_t(data.size()), micro = spec.micro_batch_size;
    EpochOrders orders(data, spec.data_order, data_order_seed(spec), spec.group_by_length,
                       spec.batch_size);
    for (int64_t epoch = 0; epoch < args->epochs; ++epoch) {
      const auto order = orders.order(epoch);
      nlohmann::json micro_batches = nlohmann::json::array();
      for (int64_t i = 0; i * micro < n; ++i) micro_batches.push_back(micro_batch(order, i, micro));
      std::printf(
          "%s\n",
          nlohmann::json{{"epoch", epoch}, {"micro_batches", micro_batches}}.dump().c_str());
    }
  });
}

}  // namespace

void add_train_commands(TrainerCli& cli) {
  add_train(cli);
  add_batches(cli);
}

}  // namespace tallrec
