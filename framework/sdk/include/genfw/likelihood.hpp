#pragma once
/// Likelihood conventions and estimators shared by every family that has one.
///
/// Convention: log p(x) is the log-DENSITY of the data-space value x (nats, all
/// Jacobians back to data space included). For data quantised to L levels over
/// [low, high], one bin has width w = (high − low)/L in data space; the discrete
/// probability of a pixel vector is then P ≈ p(x)·w^D, so
///     bits/dim = −(log p(x) − D·log(L/(high − low))) / (D·ln 2),
/// the number published for RealNVP/Glow/PixelCNN (a lower bound on the discrete
/// log-likelihood by Jensen when x is uniformly dequantised). A model whose
/// likelihood is a probability mass m reports log m − D·log w so that this
/// conversion returns −log2(m)/D. For continuous data bits/dim is −log p(x)/(D·ln 2).
#include <torch/torch.h>

#include "genfw/component.hpp"
#include "genfw/model.hpp"

namespace genfw {

/// D·log(L/(high−low)) for discrete data, 0 for continuous data.
GENFW_API double discrete_log_density_offset(const DataInfo& data);
/// bits/dim per sample from log p(x) [N] (nats, data-space density).
GENFW_API torch::Tensor bits_per_dim(const torch::Tensor& log_prob, const DataInfo& data);
GENFW_API double bits_per_dim(double log_prob, const DataInfo& data);

/// log N(z; mean, diag(exp(log_var))) summed over the last dimension, [N].
GENFW_API torch::Tensor diagonal_gaussian_log_density(const torch::Tensor& z, const torch::Tensor& mean,
                                                      const torch::Tensor& log_var);

/// Importance-weighted bound L_k [N] in nats on log p(x) of a latent-variable
/// model (Burda, Grosse & Salakhutdinov 2016):
///     L_k = E[ log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x) ],  z_i ~ q(z|x);
/// L_1 is the ELBO and L_k increases to log p(x) as k → ∞. One batched encoder
/// call and k decoder calls; memory O(N·k) scalars.
GENFW_API torch::Tensor iwae_log_likelihood(LatentVariableModel& model, const torch::Tensor& x, int64_t k);

}  // namespace genfw
