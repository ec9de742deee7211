#include "jobs/train/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/error.h"

// The device-generic allocator interface (no CUDA headers needed) is in libtorch 2.9; older
// ones report -1 for a device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
#include <c10/core/CachingDeviceAllocator.h>
#define TALLREC_HAVE_DEVICE_ALLOCATOR_STATS 1
#endif

namespace tallrec {

void set_cpu_threads(int64_t requested) {
  at::set_num_threads(requested > 0 ? int(requested)
                                    : int(std::max(1u, std::thread::hardware_concurrency())));
}
namespace {

int64_t resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return int64_t(resident) * int64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace

void select_device(const at::Device& device) {
  if (!device.is_cuda()) return;
  if (!at::detail::getCUDAHooks().isBuilt())
    throw Error("device " + device.str() +
                ": this tallrec-train's libtorch was built without CUDA");
  const int count =
      at::globalContext().hasCUDA() ? int(at::detail::getCUDAHooks().deviceCount()) : 0;
  const at::Device indexed = device.has_index() ? device : at::Device(at::kCUDA, 0);
  if (indexed.index() >= count) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw Error("device " + device.str() + ": this machine shows " + std::to_string(count) +
                " usable CUDA device(s) (CUDA_VISIBLE_DEVICES=" + (visible ? visible : "unset") +
                ")");
  }
  c10::impl::getDeviceGuardImpl(indexed.type())->setDevice(indexed);
}

at::Device parse_device(const std::string& name, const std::string& what) {
  if (name == "cpu") return at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    try {
      return at::Device(name);
    } catch (const c10::Error&) {
      // fall through to the error below
    }
  }
  throw InputError(what + ": \"" + name + "\" is not a device (cpu, cuda or cuda:N)");
}

int64_t memory_in_use_bytes(const at::Device& device) {
  if (device.is_cpu()) return resident_bytes();
#ifdef TALLREC_HAVE_DEVICE_ALLOCATOR_STATS
  using c10::CachingDeviceAllocator::StatType;
  const auto stats = c10::getDeviceAllocator(device.type())
                         ->getDeviceStats(device.has_index() ? device.index() : 0);
  return stats.allocated_bytes[size_t(StatType::AGGREGATE)].peak;
#else
  return -1;
#endif
}

}  // namespace tallrec
