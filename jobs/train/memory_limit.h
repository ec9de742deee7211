// A memory cap per run (RunSpec::memory_limit_gib) that makes libtorch's allocators really fail,
// so that out-of-memory is a normal, tested event on CPU as on a GPU:
//   CUDA: the caching allocator's per-process memory fraction (as
//         torch.cuda.set_per_process_memory_fraction), so it raises its OutOfMemoryError;
//   CPU:  libtorch's CPU allocator wrapped with a ceiling on the bytes of live tensor storage,
//         raising the same c10::OutOfMemoryError.
// Process limits were tried on CPU and do not work here: RLIMIT_DATA misses glibc's thread
// arenas (they grow by mprotect inside reservations), and under this machine's kernel the
// resident set grew 0.6 GB inside an unchanged address space, so RLIMIT_AS never fired.
#pragma once

#include <c10/core/Device.h>

#include <exception>

namespace tallrec {

// Caps the memory of a run on `device` at `gib` GiB (0: none). Call it before loading the
// model, so that the cap counts the weights. Throws Error when it cannot be applied.
void cap_memory(double gib, const at::Device& device);

// Whether `e` is an out-of-memory of either allocator (c10::OutOfMemoryError from the cap or
// from CUDA, DefaultCPUAllocator's "can't allocate memory", std::bad_alloc).
bool is_out_of_memory(const std::exception& e);

}  // namespace tallrec
