#pragma once
/// Bits per dimension from a data-space log-density (header-only; shared by the
/// nll objective, the vae/realnvp tests and the nll metric).
///
/// Convention used by every latent-family plugin: log p(x) is the log-DENSITY
/// of the data-space value x (nats, all Jacobians back to data space included).
/// For data quantised to L levels over [low, high], one quantisation bin has
/// width w = (high − low)/L in data space (the width 1/L of a uniform-
/// dequantisation bin in [0, 1]); the discrete probability of a pixel vector is
/// then P ≈ p(x)·w^D, so
///     bits/dim = −(log p(x) − D·log(L/(high − low))) / (D·ln 2),
/// which is the number published for RealNVP/Glow/PixelCNN (and a lower bound
/// on the discrete log-likelihood by Jensen when x is uniformly dequantised).
/// A model whose likelihood is a probability mass m (discretized logistic)
/// reports log m − D·log w so that this conversion returns −log2(m)/D.
/// For continuous data bits/dim is −log p(x)/(D·ln 2).
#include <cmath>

#include "data_dim.hpp"
#include "genfw/component.hpp"

namespace genfw_latent {

/// log of the data-space bin width w^D ... as the additive term D·log(L/(high−low))
/// (0 for continuous data).
inline double discrete_log_density_offset(const genfw::DataInfo& data) {
  if (!data.discrete_levels) return 0.0;
  return static_cast<double>(data_dim(data)) *
         std::log(static_cast<double>(data.levels) / (data.high - data.low));
}

/// bits/dim per sample from log p(x) [N] (nats, data-space density).
inline torch::Tensor bits_per_dim(const torch::Tensor& log_prob, const genfw::DataInfo& data) {
  const double d = static_cast<double>(data_dim(data));
  return -(log_prob - discrete_log_density_offset(data)) / (d * std::log(2.0));
}

/// Scalar version.
inline double bits_per_dim(double log_prob, const genfw::DataInfo& data) {
  const double d = static_cast<double>(data_dim(data));
  return -(log_prob - discrete_log_density_offset(data)) / (d * std::log(2.0));
}

}  // namespace genfw_latent
