#pragma once
// NCSN's layers that are computed otherwise than written in the paper, in a
// header of their own so that the tests compare them with the plain form.
#include <torch/torch.h>

namespace genfw_score {

// CondInstanceNorm++ (Song & Ermon 2019, Eq. 13): instance norm, plus the
// normalised per-channel means re-injected with α, then γ, β per noise level:
//   γ·(x̂ + m̂·α) + β = γ·x̂ + (γ·α·m̂ + β),
// so the full-size work is one fused normalisation and one addcmul; the
// per-(sample, channel) shift is computed on [N, C] (op by op it was ten
// full-size passes forward, more backward). x̂ is group_norm with one group per
// channel, which is instance norm (biased variance, ε inside the root) and was
// faster than instance_norm here, forward and backward.
struct CondInstanceNormPlus : torch::nn::Module {
  CondInstanceNormPlus(int64_t features, int64_t classes) : features(features) {
    embed = register_module("embed", torch::nn::Embedding(classes, 3 * features));
    torch::NoGradGuard no_grad;
    embed->weight.slice(1, 0, 2 * features).normal_(1.0, 0.02);
    embed->weight.slice(1, 2 * features).zero_();
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y) {
    constexpr double eps = 1e-5;
    auto means = x.mean({2, 3});
    auto [v, m] = torch::var_mean(means, -1, /*unbiased=*/true, /*keepdim=*/true);
    auto normalized_means = (means - m) / torch::sqrt(v + eps);
    auto parts = embed->forward(y).chunk(3, -1);
    const auto &gamma = parts[0], &alpha = parts[1], &beta = parts[2];
    auto shift = torch::addcmul(beta, gamma * alpha, normalized_means);
    auto h = torch::group_norm(x, /*num_groups=*/x.size(1), /*weight=*/{}, /*bias=*/{}, eps);
    return torch::addcmul(shift.unsqueeze(-1).unsqueeze(-1), h, gamma.unsqueeze(-1).unsqueeze(-1));
  }
  int64_t features;
  torch::nn::Embedding embed{nullptr};
};

/// RefineNet's 5×5 mean pooling (stride 1, zero padding counted) as a
/// depthwise convolution with the constant kernel 1/25: the same values up to
/// rounding, and about 3.5× faster than avg_pool2d forward and backward on
/// these small channel counts (avg_pool2d's CPU kernel is scalar).
inline torch::Tensor box_average_5x5(const torch::Tensor& x) {
  auto kernel = torch::full({x.size(1), 1, 5, 5}, 1.0 / 25.0, x.options().requires_grad(false));
  return torch::conv2d(x, kernel, /*bias=*/{}, /*stride=*/1, /*padding=*/2, /*dilation=*/1, /*groups=*/x.size(1));
}

}  // namespace genfw_score
