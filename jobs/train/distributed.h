// Data parallel over torch's c10d: one process per rank; gradients are summed across ranks by
// a c10d ProcessGroup (Gloo on CPU) with a FileStore rendezvous. Nothing here is a collective
// of our own. Built only where Gloo's headers exist (Debian's libgloo-dev); elsewhere
// make_process_group throws and world_size must be 1.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace tallrec {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual void allreduce_sum(std::vector<at::Tensor>& tensors) = 0;  // in place, every rank
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  int rank = 0, world_size = 1;
};

// Joins the group of `world_size` processes meeting at `rendezvous_file` (a shared FileStore).
std::unique_ptr<ProcessGroup> make_process_group(const std::string& rendezvous_file, int rank, int world_size);

bool distributed_available();

}  // namespace tallrec
