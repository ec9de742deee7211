// The NCCL backend, kept in its own file: its header pulls in CUDA's, so only a build against
// a CUDA libtorch with nccl.h compiles distributed_nccl.cc (TALLREC_WITH_NCCL).
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace tallrec {

// A ProcessGroupNCCL for this rank on `device` (a CUDA device with an index); a collective
// that waits longer than `timeout` aborts the rank.
c10::intrusive_ptr<::c10d::Backend> make_nccl_backend(
    const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
    const at::Device& device, std::chrono::milliseconds timeout);

}  // namespace tallrec
