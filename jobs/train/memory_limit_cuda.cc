// The CUDA half of memory_limit.h, built only with a CUDA libtorch (jobs/train/CMakeLists.txt).
// The device's total memory comes from the CUDA runtime libtorch itself loaded (looked up by
// name), never from a second copy linked here: the toolkit's runtime may be another version.
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <dlfcn.h>

#include <algorithm>
#include <string>

#include "common/error.h"

namespace tallrec {

void set_cuda_memory_cap(double bytes, c10::DeviceIndex device) {
  // The caching allocator refuses a fraction before it is initialised, which happens lazily at
  // the first CUDA tensor; the cap comes before the model, so initialise it here.
  at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
  using MemGetInfo = int (*)(size_t*, size_t*);  // cudaMemGetInfo; 0 is cudaSuccess
  const auto mem_get_info = reinterpret_cast<MemGetInfo>(::dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  size_t free_bytes = 0, total_bytes = 0;
  if (!mem_get_info || mem_get_info(&free_bytes, &total_bytes) != 0 || total_bytes == 0)
    throw Error("memory_limit_gib: cannot read the memory of cuda:" + std::to_string(device));
  c10::cuda::CUDACachingAllocator::setMemoryFraction(std::min(1.0, bytes / double(total_bytes)),
                                                     device);
}

}  // namespace tallrec
