// Data parallel over torch's c10d: one process per rank; gradients are summed across ranks by
// a c10d ProcessGroup with a FileStore rendezvous: Gloo for CPU runs, NCCL for CUDA runs.
// Nothing here is a collective of our own. Each backend is built only where its headers exist
// (Gloo: Debian's libgloo-dev; NCCL: a CUDA libtorch plus nccl.h); a run that needs a missing
// one fails with an error that says so.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

namespace tallrec {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  // Tensors live on the run's device (CPU for Gloo, this rank's GPU for NCCL).
  virtual void allreduce_sum(std::vector<at::Tensor>& tensors) = 0;  // in place, every rank
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  int rank = 0, world_size = 1;
};

// Joins the group of `world_size` processes meeting at `rendezvous_file` (a shared FileStore),
// with the backend that `device` calls for.
std::unique_ptr<ProcessGroup> make_process_group(const std::string& rendezvous_file, int rank,
                                                 int world_size, const at::Device& device);

}  // namespace tallrec
