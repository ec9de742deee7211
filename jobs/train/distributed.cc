#include "jobs/train/distributed.h"

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/FileStore.hpp>

#include <chrono>

#include "common/error.h"

#ifdef USE_C10D_GLOO
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef TALLREC_WITH_NCCL
#include "jobs/train/distributed_nccl.h"
#endif

namespace tallrec {
namespace {

// Ranks other than 0 wait in a collective while rank 0 evaluates and writes a checkpoint; a
// full validation set on a big model takes minutes, so allow far more than the defaults.
constexpr std::chrono::milliseconds kCollectiveTimeout = std::chrono::hours(2);

// Both backends are c10d::Backends; the trainer needs two of their collectives.
class C10dGroup : public ProcessGroup {
 public:
  C10dGroup(c10::intrusive_ptr<::c10d::Backend> backend, int r, int w)
      : backend_(std::move(backend)) {
    rank = r;
    world_size = w;
  }
  ~C10dGroup() override { backend_->shutdown(); }  // NCCL: tear the communicators down cleanly
  void allreduce_sum(std::vector<at::Tensor>& tensors) override {
    backend_->allreduce(tensors)->wait();
  }
  void broadcast(at::Tensor& tensor, int root) override {
    std::vector<at::Tensor> t{tensor};
    ::c10d::BroadcastOptions options;
    options.rootRank = root;
    backend_->broadcast(t, options)->wait();
  }

 private:
  c10::intrusive_ptr<::c10d::Backend> backend_;
};

#ifdef USE_C10D_GLOO
c10::intrusive_ptr<::c10d::Backend> make_gloo_backend(
    const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size) {
  auto options = ::c10d::ProcessGroupGloo::Options::create();
  options->timeout = kCollectiveTimeout;
  options->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  // Gloo announces its connections on stdout, which carries our JSON events: send that to stderr.
  std::cout.flush();
  std::fflush(stdout);
  const int saved = ::dup(1);
  ::dup2(2, 1);
  auto backend = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, world_size, options);
  std::cout.flush();
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  return backend;
}
#endif

}  // namespace

std::unique_ptr<ProcessGroup> make_process_group(const std::string& rendezvous_file, int rank,
                                                 int world_size, const at::Device& device) {
  if (device.is_cuda()) {
#ifdef TALLREC_WITH_NCCL
    auto store = c10::make_intrusive<::c10d::FileStore>(rendezvous_file, world_size);
    return std::make_unique<C10dGroup>(
        make_nccl_backend(store, rank, world_size, device, kCollectiveTimeout), rank, world_size);
#else
    throw InputError(
        "world_size > 1 on CUDA: this tallrec-train was built without NCCL (needs a CUDA libtorch "
        "and nccl.h)");
#endif
  }
#ifdef USE_C10D_GLOO
  auto store = c10::make_intrusive<::c10d::FileStore>(rendezvous_file, world_size);
  return std::make_unique<C10dGroup>(make_gloo_backend(store, rank, world_size), rank, world_size);
#else
  throw InputError(
      "world_size > 1 on CPU: this tallrec-train was built without c10d Gloo (install libgloo-dev "
      "and rebuild)");
#endif
}

}  // namespace tallrec
