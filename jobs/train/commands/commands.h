// Each file in jobs/train/commands/ registers one family of `tallrec-train` subcommands, as
// cli/ does for `tallrec`; jobs/train/main.cc only builds the app from them.
#pragma once

#include <c10/core/Device.h>

#include <CLI/CLI.hpp>
#include <string>

namespace tallrec {

// What the subcommands share: the app-wide options and the exit code `train` chose.
struct TrainerCli {
  CLI::App& app;
  int threads = 0;             // --threads: intra-op CPU threads, 0 = all cores
  std::string device = "cpu";  // --device: where the tools run (train takes the spec's)
  int exit_code = 0;           // train's own: 0 done, 1 failed (retryable), 2 bad input

  // Sets libtorch's intra-op thread count from --threads (its default has been seen to be 1).
  void apply_threads() const;
  // --device parsed and made current; InputError naming --device when it is not cpu/cuda[:N].
  at::Device tool_device() const;
};

void add_train_commands(TrainerCli& cli);  // train | batches
void add_model_commands(TrainerCli& cli);  // init | import-gguf | merge
void add_check_commands(TrainerCli& cli);
void add_baseline_commands(TrainerCli& cli);  // baseline-gradients  // generate | logits | score |
                                              // gradients | roc-auc | inspect-tokens
}  // namespace tallrec
