#pragma once
/// Importance-weighted estimate of log p(x) for any LatentVariableModel
/// (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders"):
///     log p(x) ≥ L_k = E[ log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x) ],  z_i ~ q(z|x),
/// L_1 is the ELBO and L_k increases to log p(x) as k → ∞. Header-only, uses the
/// interface only (encode, decoder_log_likelihood), so the nll metric can call it.
#include <cmath>
#include <vector>

#include "genfw/model.hpp"

namespace genfw_latent {

/// log N(z; mean, diag(exp(log_var))) summed over the last dimension, [N].
inline torch::Tensor diagonal_gaussian_log_density(const torch::Tensor& z, const torch::Tensor& mean,
                                                   const torch::Tensor& log_var) {
  const double log_2pi = std::log(2.0 * M_PI);
  return (-0.5 * ((z - mean).pow(2) * torch::exp(-log_var) + log_var + log_2pi)).sum(-1);
}

/// Per-sample IWAE bound L_k [N] in nats (data-space density, see bits_per_dim.hpp).
/// One batched encoder call and k batched decoder calls; memory O(N·k) scalars.
inline torch::Tensor iwae_log_likelihood(genfw::LatentVariableModel& model, const torch::Tensor& x,
                                         int64_t k) {
  TORCH_CHECK(k >= 1, "iwae_log_likelihood: k must be >= 1, got ", k);
  genfw::Posterior q = model.encode(x);
  auto zeros = torch::zeros_like(q.mean);
  std::vector<torch::Tensor> log_weights;
  log_weights.reserve(k);
  for (int64_t i = 0; i < k; ++i) {
    auto z = q.mean + torch::exp(0.5 * q.log_var) * torch::randn_like(q.mean);
    auto log_w = model.decoder_log_likelihood(x, z) + diagonal_gaussian_log_density(z, zeros, zeros) -
                 diagonal_gaussian_log_density(z, q.mean, q.log_var);
    log_weights.push_back(log_w);
  }
  return torch::logsumexp(torch::stack(log_weights, 0), 0) - std::log(static_cast<double>(k));
}

}  // namespace genfw_latent
