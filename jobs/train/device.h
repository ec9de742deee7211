// The compute device a run asks for: whether this machine has it, and how much memory the run
// holds on it.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace tallrec {

// Makes `device` the current CUDA device, so that kernels, the CUDA context and NCCL all use
// it (nothing to do on CPU). Throws a retryable Error naming the device and what this machine
// shows when it is a CUDA device that is not there (libtorch would fail later, deep inside,
// with a driver message); another worker may have the GPU, hence retryable.
void select_device(const at::Device& device);

// libtorch's intra-op threads: `requested`, or every core of the machine when it is 0 (libtorch's
// own default was 1 on some machines: docs/dev/design.md).
void set_cpu_threads(int64_t requested);

// Parses "cpu" or "cuda[:N]"; an InputError names `what` otherwise.
at::Device parse_device(const std::string& name, const std::string& what);

// For the progress events: on CPU the process's resident set; on a CUDA device the caching
// allocator's peak of allocated bytes since the run began (torch.cuda.max_memory_allocated),
// which is what must fit on the card; -1 where libtorch cannot tell (older than 2.9).
int64_t memory_in_use_bytes(const at::Device& device);

}  // namespace tallrec
