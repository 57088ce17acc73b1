#pragma once
/// The DDPM variational bound on −log p(x0) (Ho et al. 2020 eq. 5; the bits/dim
/// estimator of Nichol & Dhariwal 2021, improved-diffusion's calc_bpd_loop):
///   L_vlb = KL(q(x_T|x0) ‖ N(0, I))                          prior
///         + Σ_{t=1}^{T−1} KL(q(x_{t−1}|x_t, x0) ‖ p(x_{t−1}|x_t))  (0-indexed t)
///         − log p(x0 | x_1)                                   decoder at t = 0
/// p(x_{t−1}|x_t) = N(μ̃_t(x̂0, x_t), β̃_t I) with x̂0 from the network's output
/// (any prediction type, clipped to the data range) and the fixed "small"
/// variance β̃_t (posterior_log_variance_clipped). The decoder is the
/// discretized Gaussian of Ho et al. (bins of the data's quantisation grid,
/// half-width (high−low)/(2(L−1)), open-ended at low and high) for discrete
/// data, so the bound is on −log of a probability mass; for continuous data it
/// is the Gaussian density.
///
/// `timesteps` = K < T−1 subsamples the middle sum: {1..T−1} is cut into K
/// equal strata, in each one t drawn uniformly per sample (torch's global
/// generator), its KL weighted by the stratum size: an unbiased estimate of
/// the full sum whose extra variance shows in the per-sample spread (SEM).
#include <torch/torch.h>

#include <cmath>

#include "genfw/model.hpp"
#include "genfw/schedules.hpp"

namespace genfw::metric {

namespace detail {
inline torch::Tensor sum_dims(const torch::Tensor& t) { return t.flatten(1).sum(1); }
inline torch::Tensor standard_normal_cdf(const torch::Tensor& x) {
  return 0.5 * (1.0 + torch::erf(x / std::sqrt(2.0)));
}
}  // namespace detail

/// log p(x0 | μ, σ) per sample [N] (nats): discretized Gaussian mass for discrete
/// data, Gaussian density otherwise.
inline torch::Tensor decoder_log_likelihood(const torch::Tensor& x0, const torch::Tensor& mean,
                                            double log_scale, const DataInfo& data) {
  const double scale = std::exp(log_scale);
  if (!data.discrete_levels) {
    auto z = (x0 - mean) / scale;
    return detail::sum_dims(-0.5 * z.square() - log_scale - 0.5 * std::log(2.0 * M_PI));
  }
  const double half = (data.high - data.low) / (2.0 * double(data.levels - 1));
  auto cdf_plus = detail::standard_normal_cdf((x0 - mean + half) / scale);
  auto cdf_min = detail::standard_normal_cdf((x0 - mean - half) / scale);
  auto log_cdf_plus = torch::log(cdf_plus.clamp_min(1e-12));
  auto log_one_minus_cdf_min = torch::log((1.0 - cdf_min).clamp_min(1e-12));
  auto log_delta = torch::log((cdf_plus - cdf_min).clamp_min(1e-12));
  auto log_probs = torch::where(x0 < data.low + half, log_cdf_plus,
                                torch::where(x0 > data.high - half, log_one_minus_cdf_min, log_delta));
  return detail::sum_dims(log_probs);
}

/// Upper bound on −log p(x0) per sample [N] in nats; x0 in data space on the model's device.
/// `labels`: passed to predict (undefined for unconditional models).
inline torch::Tensor ddpm_vlb_nats(NoisePredictor& model, const torch::Tensor& x0, const torch::Tensor& labels,
                                   const DataInfo& data, int64_t timesteps) {
  const DiffusionSchedule& s = model.schedule();
  const int64_t T = s.num_steps();
  const int64_t n = x0.size(0);
  auto opts = x0.options();
  auto at = [&](const torch::Tensor& table, int64_t t) { return table[t].item<double>(); };

  // Prior term KL(N(√ᾱ x0, 1−ᾱ) ‖ N(0, 1)) at the last step.
  const double abar_last = at(s.alphas_cumprod, T - 1);
  auto prior_mean = std::sqrt(abar_last) * x0;
  const double prior_var = 1.0 - abar_last;
  auto total = detail::sum_dims(0.5 * (-1.0 - std::log(prior_var) + prior_var + prior_mean.square()));

  // Per-sample timesteps t [n] (int64 on x0's device) and schedule values at them.
  auto gather = [&](const torch::Tensor& table, const torch::Tensor& t) {
    return per_sample(table.index_select(0, t.cpu()).to(opts), x0);
  };
  auto predicted_x0 = [&](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto abar = s.alphas_cumprod.index_select(0, t.cpu()).to(opts);
    auto out = model.predict(x_t, t, labels);
    auto eps = eps_from_prediction(model.prediction_type(), out, x_t, abar);
    return x0_from_eps(x_t, eps, abar).clamp(data.low, data.high);
  };
  auto noised = [&](const torch::Tensor& t) {
    auto abar = gather(s.alphas_cumprod, t);
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * torch::randn_like(x0);
  };
  auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(x0.device());

  // Middle terms, t = 1..T−1: all of them, or per stratum one t per sample.
  const int64_t middle = T - 1;
  const int64_t k = (timesteps <= 0 || timesteps >= middle) ? middle : timesteps;
  for (int64_t j = 0; j < k; ++j) {
    int64_t begin = 1 + j * middle / k, end = 1 + (j + 1) * middle / k;  // stratum [begin, end)
    auto t = end - begin > 1 ? torch::randint(begin, end, {n}, long_opts) : torch::full({n}, begin, long_opts);
    const double weight = double(end - begin);
    auto x_t = noised(t);
    auto x0_hat = predicted_x0(x_t, t);
    // μ̃ − μ_θ = coef1 (x0 − x̂0); q and p share the variance β̃_t, so the
    // Gaussian KL is the scaled squared mean difference.
    auto diff = gather(s.posterior_mean_coef1, t) * (x0 - x0_hat);
    auto inv_var = (-gather(s.posterior_log_variance_clipped, t)).exp();
    total = total + weight * detail::sum_dims(0.5 * diff.square() * inv_var);
  }

  // Decoder term at t = 0: mean μ̃_0 = coef1_0 x̂0 + coef2_0 x_t (coef2_0 = 0, coef1_0 = 1).
  auto zero = torch::zeros({n}, long_opts);
  auto x_0 = noised(zero);
  auto x0_hat = predicted_x0(x_0, zero);
  auto mean = at(s.posterior_mean_coef1, 0) * x0_hat + at(s.posterior_mean_coef2, 0) * x_0;
  const double log_scale = 0.5 * at(s.posterior_log_variance_clipped, 0);
  total = total - decoder_log_likelihood(x0, mean, log_scale, data);
  return total;
}

}  // namespace genfw::metric
