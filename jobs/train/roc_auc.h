// ROC AUC computed exactly as scikit-learn's roc_auc_score does it (binary case): the ROC
// curve at distinct thresholds, collinear points dropped (drop_intermediate), the trapezoid
// rule, and numpy's pairwise summation. Same input, same double, ties included.
#pragma once

#include <vector>

namespace tallrec {

// labels: 0/1. Throws InputError when only one class is present (sklearn raises there too;
// AUC is undefined) or when the sizes differ.
double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores);

}  // namespace tallrec
