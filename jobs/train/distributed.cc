#include "jobs/train/distributed.h"

#include "common/error.h"

#ifdef USE_C10D_GLOO
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace tallrec {

#ifdef USE_C10D_GLOO
namespace {

class GlooGroup : public ProcessGroup {
 public:
  GlooGroup(const std::string& file, int r, int w) {
    rank = r;
    world_size = w;
    auto store = c10::make_intrusive<::c10d::FileStore>(file, w);
    auto options = ::c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    // Gloo announces its connections on stdout, which carries our JSON events: send that to stderr.
    std::cout.flush();
    std::fflush(stdout);
    const int saved = ::dup(1);
    ::dup2(2, 1);
    group_ = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, r, w, options);
    std::cout.flush();
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
  }
  void allreduce_sum(std::vector<at::Tensor>& tensors) override { group_->allreduce(tensors)->wait(); }
  void broadcast(at::Tensor& tensor, int root) override {
    std::vector<at::Tensor> t{tensor};
    ::c10d::BroadcastOptions options;
    options.rootRank = root;
    group_->broadcast(t, options)->wait();
  }

 private:
  c10::intrusive_ptr<::c10d::ProcessGroupGloo> group_;
};

}  // namespace

bool distributed_available() { return true; }

std::unique_ptr<ProcessGroup> make_process_group(const std::string& rendezvous_file, int rank, int world_size) {
  return std::make_unique<GlooGroup>(rendezvous_file, rank, world_size);
}
#else
bool distributed_available() { return false; }

std::unique_ptr<ProcessGroup> make_process_group(const std::string&, int, int) {
  throw InputError("world_size > 1: this tallrec-train was built without c10d Gloo (install libgloo-dev and rebuild)");
}
#endif

}  // namespace tallrec
