// `tallrec-train`: one training attempt per process (DESIGN.md, "Training job"). Links libtorch,
// never SentencePiece or the network. Today it reads tokenized datasets and builds TALLRec's
// micro-batches (`inspect-tokens`); the model, LoRA and the training loop are not built yet.
// Exit codes: 0 success, 1 failure, 2 bad input or usage.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "common/version.h"
#include "jobs/data/token_file.h"
#include "jobs/train/collate.h"

namespace {

void inspect_tokens(const std::string& dir, int64_t micro_batch, bool verify) {
  tallrec::TokenizedDataset data(dir);
  if (verify) data.verify_checksum();
  const auto& m = data.meta();
  size_t longest = 0, total = 0, yes = 0, truncated = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    size_t len = data.train_ids(i).size();
    longest = std::max(longest, len);
    total += len;
    yes += data.label(i) == 1;
    truncated += int64_t(len) == m.cutoff_len && data.train_ids(i).back() != m.eos_id;
  }
  std::printf("%s: %zu records from %s (template %s, cutoff %lld, train_on_inputs %s)\n", dir.c_str(),
              data.size(), m.source.c_str(), m.prompt_template.c_str(), static_cast<long long>(m.cutoff_len),
              m.train_on_inputs ? "true" : "false");
  if (m.few_shot) {
    std::printf("  few-shot subset: sample %lld, seed %llu\n", static_cast<long long>(m.sample),
                static_cast<unsigned long long>(m.seed));
  }
  std::printf("  training tokens %zu (mean %.1f, longest %zu, %zu truncated); yes ratio %.4f; answer ids yes=%d no=%d\n",
              total, data.size() ? double(total) / double(data.size()) : 0.0, longest, truncated,
              data.size() ? double(yes) / double(data.size()) : 0.0, m.yes_id, m.no_id);
  if (data.size() == 0 || micro_batch <= 0) return;
  std::vector<size_t> first(std::min<size_t>(size_t(micro_batch), data.size()));
  std::iota(first.begin(), first.end(), 0);
  auto batch = tallrec::collate_training_batch(data, first);
  std::printf("  first micro-batch: input_ids [%lld, %lld], %lld real tokens\n",
              static_cast<long long>(batch.input_ids.size(0)), static_cast<long long>(batch.input_ids.size(1)),
              static_cast<long long>(batch.attention_mask.sum().item<int64_t>()));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tallrec-train: one TALLRec LoRA rec-tuning attempt (libtorch)"};
  app.set_version_flag("--version", std::string(tallrec::kVersion));
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "Intra-op CPU threads (0: all cores)");

  std::string dir;
  int64_t micro_batch = 32;
  bool verify = false;
  auto* inspect = app.add_subcommand("inspect-tokens", "Check a tokenized dataset and build its first micro-batch");
  inspect->add_option("tokens", dir, "Folder written by `tallrec data tokenize`")->required();
  inspect->add_option("--micro-batch", micro_batch, "Micro-batch size to collate")->capture_default_str();
  inspect->add_flag("--verify", verify, "Also check tokens.bin against its SHA-256");
  inspect->callback([&] {
    // libtorch's default intra-op thread count has been seen to be 1 (DESIGN.md): set it.
    at::set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())));
    inspect_tokens(dir, micro_batch, verify);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const tallrec::InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
