#include "jobs/train/data_order.h"

#include <algorithm>

#include "jobs/data/numpy_random.h"

namespace tallrec {

std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch) {
  auto p = numpy_permutation(n, seed * 1000003ULL + uint64_t(epoch));
  return {p.begin(), p.end()};
}

std::vector<size_t> group_by_length(std::vector<size_t> order, const TokenizedDataset& data, size_t batch) {
  const size_t mega = 50 * batch;
  auto length = [&](size_t i) { return data.train_ids(i).size(); };
  for (size_t start = 0; start < order.size(); start += mega) {
    auto end = order.begin() + std::ptrdiff_t(std::min(order.size(), start + mega));
    std::stable_sort(order.begin() + std::ptrdiff_t(start), end, [&](size_t a, size_t b) { return length(a) > length(b); });
  }
  size_t longest = 0;
  for (size_t k = 0; k < order.size(); k += mega)
    if (length(order[k]) > length(order[longest])) longest = k;
  std::swap(order[0], order[longest]);
  return order;
}

}  // namespace tallrec
