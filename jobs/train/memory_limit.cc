#include "jobs/train/memory_limit.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace tallrec {

#ifdef TALLREC_WITH_CUDA_ALLOCATOR
// memory_limit_cuda.cc: the fraction of the device's memory that `bytes` is, set on the caching
// allocator. Only built with a CUDA libtorch and the CUDA runtime's headers.
void set_cuda_memory_cap(double bytes, c10::DeviceIndex device);
#endif

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// libtorch's CPU allocator with a ceiling: it counts the bytes of live tensor storage and refuses
// (c10::OutOfMemoryError, as CUDA's allocator does) an allocation that would pass the cap.
class CappedCpuAllocator final : public c10::Allocator {
 public:
  CappedCpuAllocator(c10::Allocator* inner, int64_t cap) : inner_(inner), cap_(cap) {}

  c10::DataPtr allocate(size_t n) override {
    const int64_t held = live_.fetch_add(int64_t(n)) + int64_t(n);
    if (held > cap_) {
      live_.fetch_sub(int64_t(n));
      TORCH_CHECK_WITH(OutOfMemoryError, false, "CPU out of memory: tried to allocate ", n,
                       " bytes with ", held - int64_t(n), " bytes of tensors held and a cap (",
                       "memory_limit_gib) of ", cap_, " bytes");
    }
    c10::DataPtr inner;
    try {
      inner = inner_->allocate(n);
    } catch (...) {
      live_.fetch_sub(int64_t(n));
      throw;
    }
    void* data = inner.get();
    const c10::Device device = inner.device();
    auto* held_ptr = new Held{std::move(inner), this, int64_t(n)};
    return {data, held_ptr, &CappedCpuAllocator::release, device};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

 private:
  struct Held {
    c10::DataPtr inner;
    CappedCpuAllocator* owner;
    int64_t bytes;
  };
  static void release(void* context) {
    auto* held = static_cast<Held*>(context);
    held->owner->live_.fetch_sub(held->bytes);
    delete held;  // frees the storage through the inner allocator's deleter
  }

  c10::Allocator* inner_;
  const int64_t cap_;
  std::atomic<int64_t> live_{0};
};

}  // namespace

void cap_memory(double gib, const at::Device& device) {
  if (gib <= 0) return;
  if (device.is_cuda()) {
#ifdef TALLREC_WITH_CUDA_ALLOCATOR
    set_cuda_memory_cap(gib * kGiB, device.has_index() ? device.index() : 0);
    return;
#else
    throw Error("memory_limit_gib on " + device.str() +
                ": this tallrec-train was built without the CUDA allocator's headers");
#endif
  }
  // Lives as long as the process: tensors freed at exit still call into it.
  static CappedCpuAllocator* capped =
      new CappedCpuAllocator(c10::GetCPUAllocator(), int64_t(gib * kGiB));
  c10::SetCPUAllocator(capped, /*priority=*/100);
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e))
    return true;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return std::string(c10_error->what_without_backtrace()).find("can't allocate memory") !=
           std::string::npos;
  return false;
}

}  // namespace tallrec
