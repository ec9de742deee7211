#include "jobs/train/roc_auc.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "common/error.h"

namespace tallrec {
namespace {

// numpy's pairwise_sum for doubles (numpy/_core/src/umath/loops_utils.h.src): plain loop under
// 8 elements, 8 interleaved accumulators up to 128, halves (rounded to a multiple of 8) above.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + size_t(k)];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores) {
  if (labels.size() != scores.size())
    throw InputError("roc_auc: labels and scores differ in length");
  const size_t n = labels.size();
  size_t positives = 0;
  for (int y : labels) {
    if (y != 0 && y != 1) throw InputError("roc_auc: labels must be 0 or 1");
    positives += size_t(y);
  }
  if (positives == 0 || positives == n) {
    throw InputError("roc_auc: only one class (" + std::to_string(positives) + " of " +
                     std::to_string(n) + " positive); ROC AUC is not defined");
  }
  // Scores in descending order; ties grouped (their internal order does not matter).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  // _binary_clf_curve: cumulative true/false positives at the last index of each distinct score.
  std::vector<double> tps, fps;
  double tp = 0;
  for (size_t i = 0; i < n; ++i) {
    tp += labels[order[i]];
    if (i + 1 == n || scores[order[i + 1]] != scores[order[i]]) {
      tps.push_back(tp);
      fps.push_back(double(i + 1) - tp);
    }
  }
  // roc_curve(drop_intermediate=True): keep the ends and points where the curve bends.
  if (tps.size() > 2) {
    std::vector<double> t2{tps.front()}, f2{fps.front()};
    for (size_t i = 1; i + 1 < tps.size(); ++i) {
      double dt = tps[i + 1] - 2 * tps[i] + tps[i - 1], df = fps[i + 1] - 2 * fps[i] + fps[i - 1];
      if (dt != 0 || df != 0) {
        t2.push_back(tps[i]);
        f2.push_back(fps[i]);
      }
    }
    t2.push_back(tps.back());
    f2.push_back(fps.back());
    tps.swap(t2);
    fps.swap(f2);
  }
  tps.insert(tps.begin(), 0.0);
  fps.insert(fps.begin(), 0.0);
  const double tp_total = tps.back(), fp_total = fps.back();
  std::vector<double> terms(tps.size() - 1);
  for (size_t i = 0; i + 1 < tps.size(); ++i) {
    double x0 = fps[i] / fp_total, x1 = fps[i + 1] / fp_total;
    double y0 = tps[i] / tp_total, y1 = tps[i + 1] / tp_total;
    terms[i] = (x1 - x0) * (y1 + y0) / 2.0;  // numpy.trapezoid's d * (y[1:] + y[:-1]) / 2.0
  }
  return pairwise_sum(terms.data(), terms.size());
}

}  // namespace tallrec
