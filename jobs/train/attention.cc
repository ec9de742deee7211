#include "jobs/train/attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace tallrec {
namespace {

// torch.finfo(dtype).min, which HF fills masked attention scores with.
double lowest_value(at::ScalarType dtype) {
  if (dtype == at::kHalf) return double(std::numeric_limits<c10::Half>::lowest());
  if (dtype == at::kBFloat16) return double(std::numeric_limits<c10::BFloat16>::lowest());
  if (dtype == at::kDouble) return std::numeric_limits<double>::lowest();
  return double(std::numeric_limits<float>::lowest());
}

// HF eager's result for rows that see no key: uniform attention over all T keys, with the
// gradient autograd gives through softmax(s + finfo.min) (see attention.h). The second term is
// exactly zero in the forward pass and carries that gradient: s_ij = scale q_i . k_j enters as
// scale/T q_i^T (K^T V - T kbar vbar^T), with V and vbar detached.
at::Tensor uniform_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t T = k.size(-2);
  const double scale = 1.0 / std::sqrt(double(q.size(-1)));
  at::Tensor v_mean = v.mean(-2, /*keepdim=*/true);                         // [B, Nh, 1, D]
  at::Tensor k_mean = k.mean(-2, /*keepdim=*/true);                         // [B, Nh, 1, D]
  at::Tensor kv = at::matmul(k.transpose(-2, -1), v.detach()) / double(T);  // [B, Nh, D, D]
  at::Tensor x = (at::matmul(q, kv) - at::matmul(q, k_mean.transpose(-2, -1)) * v_mean.detach()) *
                 scale;  // [B, Nh, T, D]
  return v_mean + (x - x.detach());
}

}  // namespace

AttentionMask make_attention_mask(const at::Tensor& attention_mask, int64_t B, int64_t T, int64_t G,
                                  at::ScalarType dtype, const at::Device& device) {
  const auto on = at::TensorOptions().device(device);
  at::Tensor allowed =
      at::ones({T, T}, on.dtype(at::kBool)).tril().unsqueeze(0).unsqueeze(0);  // [1, 1, T, T]
  if (attention_mask.defined()) allowed = allowed & attention_mask.to(at::kBool).view({B, 1, 1, T});
  allowed = allowed.expand({B, 1, T, T}).repeat({1, 1, G, 1});  // [B, 1, G*T, T]
  AttentionMask m;
  at::Tensor unattended = allowed.any(-1, /*keepdim=*/true).logical_not();  // [B, 1, G*T, 1]
  if (unattended.any().item<bool>()) {
    m.unattended = unattended;
    allowed = allowed | unattended;
  }
  m.additive = at::zeros({B, 1, G * T, T}, on.dtype(dtype))
                   .masked_fill(allowed.logical_not(), lowest_value(dtype));
  return m;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask) {
  const int64_t B = q.size(0), Nh = q.size(1), T = q.size(2), D = q.size(3), Nkv = k.size(1);
  // Contiguous once: what SDPA saves is then what the closed form's products save, not a copy.
  at::Tensor rows = q.reshape({B, Nkv, Nh / Nkv * T, D});  // a key/value head's G*T query rows
  at::Tensor keys = k.contiguous(), values = v.contiguous();
  at::Tensor out = at::scaled_dot_product_attention(rows, keys, values, mask.additive);
  if (mask.unattended.defined())
    out = at::where(mask.unattended, uniform_attention(rows, keys, values), out);
  return out.view({B, Nh, T, D});
}

}  // namespace tallrec
