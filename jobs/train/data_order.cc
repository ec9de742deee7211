#include "jobs/train/data_order.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "common/error.h"
#include "jobs/data/numpy_random.h"

namespace tallrec {
namespace {

// HF's get_length_grouped_indices after its randperm: megabatches of min(n / (4 batch), 50)
// (at least 1) update batches, each sorted by length, longest first (a stable sort, as
// Python's sorted(reverse=True)); the longest sequence overall is swapped to the front, so an
// out-of-memory error shows on the first step.
std::vector<size_t> group_by_length(std::vector<size_t> order, const TokenizedDataset& data,
                                    int64_t batch) {
  const size_t multiple = size_t(std::clamp<int64_t>(int64_t(order.size()) / (batch * 4), 1, 50));
  const size_t mega = multiple * size_t(batch);
  auto length = [&](size_t i) { return data.train_ids(i).size(); };
  for (size_t start = 0; start < order.size(); start += mega) {
    auto end = order.begin() + std::ptrdiff_t(std::min(order.size(), start + mega));
    std::stable_sort(order.begin() + std::ptrdiff_t(start), end,
                     [&](size_t a, size_t b) { return length(a) > length(b); });
  }
  size_t longest =
      0;  // the first megabatch whose head is longest (torch.argmax: the first maximum)
  for (size_t k = 0; k < order.size(); k += mega)
    if (length(order[k]) > length(order[longest])) longest = k;
  std::swap(order[0], order[longest]);
  return order;
}

}  // namespace

EpochOrders::EpochOrders(const TokenizedDataset& data, DataOrder kind, uint64_t seed,
                         bool group_by_length, int64_t batch_size)
    : data_(data),
      kind_(kind),
      seed_(seed),
      group_by_length_(group_by_length),
      batch_size_(batch_size) {
  if (kind_ == DataOrder::kHf) {
    // torch.manual_seed(seed); s = int(torch.empty((), dtype=torch.int64).random_().item())
    at::Generator global = at::detail::createCPUGenerator(seed);
    const int64_t s = at::empty({}, at::kLong).random_(global).item<int64_t>();
    sampler_ = at::detail::createCPUGenerator(uint64_t(s));
  }
}

std::vector<size_t> EpochOrders::permutation(int64_t epoch) {
  const int64_t n = int64_t(data_.size());
  if (kind_ == DataOrder::kSeeded) {
    auto p = numpy_permutation(size_t(n), seed_ * 1000003ULL + uint64_t(epoch));
    return {p.begin(), p.end()};
  }
  // RandomSampler's epoch is `randperm(n)` then `randperm(n)[:num_samples % n]`: the second
  // permutation is drawn (and empty) when the epoch's iterator runs out. LengthGroupedSampler
  // draws one.
  at::Tensor perm;
  for (int64_t e = next_epoch_; e <= epoch; ++e) {  // epochs skipped by a resume are drawn too
    perm = at::randperm(n, sampler_, at::kLong);
    if (!group_by_length_) at::randperm(n, sampler_, at::kLong);
  }
  const int64_t* p = perm.data_ptr<int64_t>();
  return std::vector<size_t>(p, p + n);
}

std::vector<size_t> EpochOrders::order(int64_t epoch) {
  if (epoch < next_epoch_) throw Error("epoch orders are drawn in increasing order");
  std::vector<size_t> order = permutation(epoch);
  next_epoch_ = epoch + 1;
  return group_by_length_ ? group_by_length(std::move(order), data_, batch_size_) : order;
}

std::vector<size_t> micro_batch(const std::vector<size_t>& order, int64_t index, int64_t size) {
  const size_t begin = std::min(order.size(), size_t(index * size)),
               end = std::min(order.size(), size_t((index + 1) * size));
  return {order.begin() + std::ptrdiff_t(begin), order.begin() + std::ptrdiff_t(end)};
}

}  // namespace tallrec
