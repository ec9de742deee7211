// The initialisations RecBole's models use (torch.nn.init and torch.nn's module defaults), on
// libtorch's global generator. Shapes as torch's: a weight is [out, in, kernel...].
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

namespace tallrec::init {

// torch.nn.init._calculate_fan_in_and_fan_out.
inline std::pair<double, double> fans(const at::Tensor& w) {
  double receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= double(w.size(d));
  return {double(w.size(1)) * receptive, double(w.size(0)) * receptive};
}

inline at::Tensor normal(at::Tensor w, double std) {
  at::NoGradGuard no_grad;
  w.normal_(0, std);
  return w;
}
inline at::Tensor xavier_normal(at::Tensor w) {
  auto [in, out] = fans(w);
  return init::normal(w, std::sqrt(2.0 / (in + out)));
}
inline at::Tensor xavier_uniform(at::Tensor w) {
  at::NoGradGuard no_grad;
  auto [in, out] = fans(w);
  const double a = std::sqrt(6.0 / (in + out));
  w.uniform_(-a, a);
  return w;
}
// nn.Linear's and nn.Conv2d's reset_parameters: kaiming_uniform_(a=sqrt(5)) for the weight,
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; both bounds come to 1/sqrt(fan_in).
inline at::Tensor torch_default(at::Tensor t, double fan_in) {
  at::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(fan_in);
  t.uniform_(-bound, bound);
  return t;
}

}  // namespace tallrec::init
