// The GPUs a worker offers, and how its slots share them. Discovery asks `nvidia-smi`; a machine
// without it (or without GPUs) offers none and trains on the CPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tallrec {

struct GpuInfo {
  int index;
  std::string name;
  int64_t memory_bytes;
};

// `spec` is "auto" (ask nvidia-smi), "none", or a comma-separated list of indices ("0,2").
// Throws InputError for a malformed list.
std::vector<GpuInfo> select_gpus(const std::string& spec);
nlohmann::json gpus_json(const std::vector<GpuInfo>& gpus);

// What one slot runs with: its GPUs (empty: CPU) and the trainer settings that follow from them.
struct SlotResources {
  std::vector<GpuInfo> gpus;
  // CUDA_VISIBLE_DEVICES for the trainer ("" on CPU).
  std::string visible_devices() const;
  // Run-spec overrides: device "cuda" and one data-parallel rank per GPU when there are GPUs.
  nlohmann::json overrides() const;
};

// Splits `gpus` evenly over `slots` (each slot the same count; InputError if they do not divide).
std::vector<SlotResources> split_slots(const std::vector<GpuInfo>& gpus, int slots);

}  // namespace tallrec
