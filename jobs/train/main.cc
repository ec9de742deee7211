// `tallrec-train`: one training attempt per process (docs/dev/design.md, "Training job"), plus the
// tools around the model (jobs/train/commands/: one file per family). Links libtorch, never
// SentencePiece or the network.
// Exit codes: 0 success, 1 failure (retryable), 2 bad input or usage (not retryable).
#include <malloc.h>

#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <limits>
#include <thread>

#include "common/cli_main.h"
#include "common/version.h"
#include "jobs/train/commands/commands.h"
#include "jobs/train/device.h"

namespace tallrec {

void TrainerCli::apply_threads() const { set_cpu_threads(threads); }

at::Device TrainerCli::tool_device() const {
  const at::Device parsed = parse_device(device, "--device");
  select_device(parsed);
  return parsed;
}

}  // namespace tallrec

#ifdef TALLREC_JEMALLOC
// jemalloc (jobs/train/CMakeLists.txt) reads this at its first allocation. Training allocates and
// frees the same large activations every micro-batch; pages kept dirty are reused without the
// kernel zeroing them again (purging them cost 1.5x the step time on this VM), and jemalloc's size
// classes keep the resident set at the live size. MALLOC_CONF in the environment still applies.
extern "C" {
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
#endif

int main(int argc, char** argv) {
#ifndef TALLREC_JEMALLOC
  // glibc: fresh mmaps for each large activation cost more system time (zeroing) than the math;
  // keeping freed memory in the heap removes that, at the price of fragmentation.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TOP_PAD, std::numeric_limits<int>::max());
#endif
  CLI::App app{"tallrec-train: one TALLRec LoRA rec-tuning attempt (libtorch)"};
  app.set_version_flag("--version", std::string(tallrec::kVersion));
  app.require_subcommand(1);
  tallrec::TrainerCli cli{app};
  app.add_option("--threads", cli.threads,
                 "Intra-op CPU threads (0: all cores; for train, the spec's unless given)");
  app.add_option("--device", cli.device,
                 "Where generate, logits and score run: cpu or cuda[:N] (train: the spec's)")
      ->capture_default_str();
  tallrec::add_train_commands(cli);
  tallrec::add_model_commands(cli);
  tallrec::add_check_commands(cli);
  tallrec::add_baseline_commands(cli);
  const int code = tallrec::run_cli(app, argc, argv);
  return code != 0 ? code : cli.exit_code;
}
