#include "jobs/train/rng_state.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <mutex>

#include "jobs/train/distributed.h"

namespace tallrec {
at::Tensor generator_state(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(at::Generator generator, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

RngState capture_rng_state(const at::Device& device) {
  RngState s;
  s.cpu = generator_state(at::globalContext().defaultGenerator(at::kCPU));
  if (device.is_cuda()) s.device = generator_state(at::globalContext().defaultGenerator(device));
  return s;
}

void restore_rng_state(const RngState& state, const at::Device& device) {
  set_generator_state(at::globalContext().defaultGenerator(at::kCPU), state.cpu);
  if (device.is_cuda() && state.device.defined())
    set_generator_state(at::globalContext().defaultGenerator(device), state.device);
}

std::vector<RngState> gather_rng_states(ProcessGroup* group, const at::Device& device) {
  const RngState mine = capture_rng_state(device);
  if (!group) return {mine};
  // A gather built from the one collective every backend has: each rank writes its bytes into
  // its own row of a zero buffer, and the sum over ranks holds every row. The states are a few
  // kilobytes, once per evaluation.
  const int64_t cpu_bytes = mine.cpu.numel(),
                device_bytes = mine.device.defined() ? mine.device.numel() : 0;
  at::Tensor rows = at::zeros({group->world_size, cpu_bytes + device_bytes},
                              at::TensorOptions().dtype(at::kInt).device(device));
  at::Tensor row = rows[group->rank];
  row.narrow(0, 0, cpu_bytes).copy_(mine.cpu);
  if (device_bytes > 0) row.narrow(0, cpu_bytes, device_bytes).copy_(mine.device);
  std::vector<at::Tensor> buffer{rows};
  group->allreduce_sum(buffer);
  if (group->rank != 0) return {};
  at::Tensor all = buffer[0].to(at::kCPU, at::kByte);
  std::vector<RngState> states;
  for (int64_t r = 0; r < group->world_size; ++r) {
    RngState s;
    s.cpu = all[r].narrow(0, 0, cpu_bytes).clone();
    if (device_bytes > 0) s.device = all[r].narrow(0, cpu_bytes, device_bytes).clone();
    states.push_back(std::move(s));
  }
  return states;
}

}  // namespace tallrec
