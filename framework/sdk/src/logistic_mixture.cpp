#include "genfw/logistic_mixture.hpp"

#include <cmath>

#include "genfw/error.hpp"

namespace genfw {

int64_t logistic_mixture_num_params(int64_t channels, int64_t mixtures) {
  return mixtures * (1 + 2 * channels + channels * (channels - 1) / 2);
}

namespace {

/// The parameters of one image batch, split by role: [N, K, H, W] each (per channel / pair).
struct MixtureParams {
  torch::Tensor logits;
  std::vector<torch::Tensor> means, log_scales;
  std::vector<std::vector<torch::Tensor>> coefficients;  // [c][j], j < c
};

MixtureParams split_params(const torch::Tensor& params, int64_t channels, int64_t mixtures) {
  GENFW_CHECK(params.dim() == 4 && params.size(1) == logistic_mixture_num_params(channels, mixtures),
              "logistic mixture: expected params [N, ", logistic_mixture_num_params(channels, mixtures),
              ", H, W] for ", channels, " channels and ", mixtures, " components, got ", params.sizes());
  const int64_t k = mixtures;
  MixtureParams p;
  p.logits = params.narrow(1, 0, k);
  int64_t pair = 0;
  p.coefficients.resize(size_t(channels));
  for (int64_t c = 0; c < channels; ++c) {
    p.means.push_back(params.narrow(1, k + c * k, k));
    p.log_scales.push_back(params.narrow(1, k + (channels + c) * k, k).clamp_min(-7.0));
    for (int64_t j = 0; j < c; ++j, ++pair) {
      p.coefficients[size_t(c)].push_back(torch::tanh(params.narrow(1, k * (1 + 2 * channels + pair), k)));
    }
  }
  return p;
}

/// μ̃_c = μ_c + Σ_{j<c} coeff_{c,j}·x_j (PixelCNN++ §2.2), x_j [N, 1, H, W].
torch::Tensor conditioned_mean(const MixtureParams& p, int64_t c, const std::vector<torch::Tensor>& earlier) {
  auto mean = p.means[size_t(c)];
  for (size_t j = 0; j < earlier.size(); ++j) mean = mean + p.coefficients[size_t(c)][j] * earlier[j];
  return mean;
}

}  // namespace

torch::Tensor discretized_logistic_mixture_log_prob(const torch::Tensor& x, const torch::Tensor& params,
                                                    int64_t mixtures, int64_t levels) {
  const int64_t channels = x.size(1);
  auto p = split_params(params, channels, mixtures);
  const double half_bin = 1.0 / double(levels - 1);  // bins of width 2/(L − 1) around the levels
  auto level = torch::round((x + 1.0) / (2.0 * half_bin));
  std::vector<torch::Tensor> earlier;
  torch::Tensor log_prob = torch::log_softmax(p.logits, 1);  // log π_k
  for (int64_t c = 0; c < channels; ++c) {
    auto xc = x.narrow(1, c, 1);
    auto centred = xc - conditioned_mean(p, c, earlier);
    auto inv_scale = torch::exp(-p.log_scales[size_t(c)]);
    auto plus_in = inv_scale * (centred + half_bin), min_in = inv_scale * (centred - half_bin);
    auto log_cdf_plus = torch::log_sigmoid(plus_in);            // the first bin, (−∞, x + b]
    auto log_one_minus_cdf_min = torch::log_sigmoid(-min_in);   // the last bin, [x − b, ∞)
    // Interior bin: σ(a) − σ(b) = σ(a)·σ(−b)·(1 − e^(b − a)), exact in every tail, where
    // openai/pixel-cnn switches to the density at the centre once the difference is < 1e-5.
    auto interior = log_cdf_plus + log_one_minus_cdf_min + torch::log(-torch::expm1(min_in - plus_in));
    auto level_c = level.narrow(1, c, 1);
    log_prob = log_prob + torch::where(level_c <= 0, log_cdf_plus,
                                       torch::where(level_c >= double(levels - 1), log_one_minus_cdf_min, interior));
    earlier.push_back(xc);
  }
  return torch::logsumexp(log_prob, 1);  // Σ_k π_k Π_c P(x_c | k, x_<c)
}

torch::Tensor sample_discretized_logistic_mixture(const torch::Tensor& params, int64_t channels, int64_t mixtures,
                                                  const torch::Tensor& component_noise,
                                                  const torch::Tensor& logistic_noise, int64_t levels) {
  auto p = split_params(params, channels, mixtures);
  // Gumbel-max: argmax_k (π_k − log(−log u_k)) is component k with probability softmax(π)_k.
  auto gumbel = -torch::log(-torch::log(component_noise.clamp(1e-12, 1.0 - 1e-7)));
  auto chosen = torch::nn::functional::one_hot((p.logits + gumbel).argmax(1), mixtures).permute({0, 3, 1, 2});
  auto pick = [&](const torch::Tensor& t) { return (t * chosen).sum(1, true); };
  const double steps = double(levels - 1);
  std::vector<torch::Tensor> earlier;
  for (int64_t c = 0; c < channels; ++c) {
    auto u = logistic_noise.narrow(1, c, 1).clamp(1e-7, 1.0 - 1e-7);
    auto logistic = torch::log(u) - torch::log1p(-u);  // inverse logistic CDF
    auto mean = pick(p.means[size_t(c)]);
    for (size_t j = 0; j < earlier.size(); ++j) mean = mean + pick(p.coefficients[size_t(c)][j]) * earlier[j];
    auto xc = (mean + torch::exp(pick(p.log_scales[size_t(c)])) * logistic).clamp(-1.0, 1.0);
    earlier.push_back(torch::round((xc + 1.0) * steps / 2.0) * 2.0 / steps - 1.0);  // the bin it falls in
  }
  return torch::cat(earlier, 1);
}

}  // namespace genfw
