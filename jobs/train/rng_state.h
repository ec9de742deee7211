// The random state that dropout draws from, captured for checkpoints: the CPU generator and,
// on a GPU run, the device's generator too. Every data-parallel rank has its own (seeded with
// seed + rank), so a checkpoint keeps one state per rank and a resumed rank gets its own back.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace tallrec {

class ProcessGroup;

struct RngState {
  at::Tensor cpu;     // uint8, the CPU generator's get_state()
  at::Tensor device;  // uint8, the CUDA generator's get_state(); undefined on CPU runs
};

// One generator's state (a uint8 tensor), read and written under the generator's lock.
at::Tensor generator_state(at::Generator generator);
void set_generator_state(at::Generator generator, const at::Tensor& state);

RngState capture_rng_state(const at::Device& device);
void restore_rng_state(const RngState& state, const at::Device& device);

// Every rank's state, indexed by rank, at rank 0 (other ranks get an empty vector). One
// collective over `group`; without a group, just this process's state.
std::vector<RngState> gather_rng_states(ProcessGroup* group, const at::Device& device);

}  // namespace tallrec
