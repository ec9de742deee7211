// Checkpoints (jobs/train/checkpoint.h): what is written is read back exactly, a checkpoint with
// a damaged file is passed over for the newest whole one, and pruning keeps what it is told to.
#include "jobs/train/checkpoint.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "small_config.h"

namespace tallrec {
namespace {
namespace fs = std::filesystem;
using test::small_config;

struct Scratch {
  Scratch() : path(fs::temp_directory_path() / ("tallrec-ckpt-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~Scratch() { fs::remove_all(path); }
  fs::path path;
};

CheckpointData data_for(const LoraAdapters& lora, int64_t step) {
  CheckpointData d;
  d.state.global_step = step;
  d.state.epoch = 1;
  d.state.micro_batch = 3;
  d.state.best_auc = 0.625;
  d.state.best_step = step;
  d.state.history =
      nlohmann::json::array({{{"step", step}, {"val_auc", 0.625}, {"val_loss", 0.5}}});
  for (const auto& p : lora.parameters()) {
    d.exp_avg.push_back(at::randn(p.sizes()));
    d.exp_avg_sq.push_back(at::rand(p.sizes()));
  }
  d.rng = {capture_rng_state(at::kCPU)};
  d.data_order = "hf";
  d.data_seed = 42;
  return d;
}

TEST(Checkpoint, WhatIsWrittenIsReadBackExactly) {
  Scratch dir;
  LoraConfig lc;
  LoraAdapters lora(small_config(), lc, 3, at::kFloat);
  const CheckpointData written = data_for(lora, 4);
  const auto [path, manifest_sha] = write_checkpoint(dir.path, lora, "/base", written);
  EXPECT_EQ(path.filename(), "step-00000004");
  EXPECT_EQ(manifest_sha.size(), 64u);
  ASSERT_EQ(newest_valid_checkpoint(dir.path), path);
  const CheckpointData read = read_checkpoint(path, lora.parameters().size());
  EXPECT_EQ(read.state.global_step, 4);
  EXPECT_EQ(read.state.micro_batch, 3);
  EXPECT_EQ(read.state.best_auc, 0.625);
  EXPECT_EQ(read.state.history, written.state.history);
  EXPECT_EQ(read.data_order, "hf");
  EXPECT_EQ(read.data_seed, 42u);
  ASSERT_EQ(read.exp_avg.size(), written.exp_avg.size());
  for (size_t i = 0; i < read.exp_avg.size(); ++i) {
    EXPECT_TRUE(at::equal(read.exp_avg[i], written.exp_avg[i])) << i;
    EXPECT_TRUE(at::equal(read.exp_avg_sq[i], written.exp_avg_sq[i])) << i;
  }
  ASSERT_EQ(read.rng.size(), 1u);
  EXPECT_TRUE(at::equal(read.rng[0].cpu, written.rng[0].cpu));
  // The adapter is a PEFT folder that loads back to the same tensors.
  const LoraAdapters back = LoraAdapters::load_peft(path, small_config(), at::kFloat);
  const auto want = lora.parameters(), got = back.parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(at::equal(got[i], want[i])) << i;
  // Read with the wrong number of parameters (another adapter's), it is refused by name.
  EXPECT_THROW(read_checkpoint(path, lora.parameters().size() + 1), InputError);
}

TEST(Checkpoint, ADamagedNewestIsPassedOverAndPruningKeepsWhatItIsTold) {
  Scratch dir;
  LoraConfig lc;
  LoraAdapters lora(small_config(), lc, 3, at::kFloat);
  const fs::path two = write_checkpoint(dir.path, lora, "/base", data_for(lora, 2)).first;
  const fs::path four = write_checkpoint(dir.path, lora, "/base", data_for(lora, 4)).first;
  const fs::path six = write_checkpoint(dir.path, lora, "/base", data_for(lora, 6)).first;
  EXPECT_EQ(newest_valid_checkpoint(dir.path), six);
  {  // one flipped byte in the newest's optimizer state
    std::fstream f(six / "optimizer.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  EXPECT_EQ(newest_valid_checkpoint(dir.path), four);
  fs::remove(four / "state.json");  // a missing file: passed over too
  EXPECT_EQ(newest_valid_checkpoint(dir.path), two);
  prune_checkpoints(dir.path, {two, six});
  EXPECT_TRUE(fs::exists(two));
  EXPECT_TRUE(fs::exists(six));
  EXPECT_FALSE(fs::exists(four));
  prune_checkpoints(dir.path, {});
  EXPECT_FALSE(newest_valid_checkpoint(dir.path));
}

}  // namespace
}  // namespace tallrec
