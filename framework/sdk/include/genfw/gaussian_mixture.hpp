#pragma once
/// An isotropic Gaussian mixture Σ_k w_k N(μ_k, s_k² I) with everything exact:
/// log-density, score, sampling, and the law after scaling and adding noise.
/// It is the ground truth that score, diffusion and density code is tested
/// against, the analytic_gmm models' engine and toy2d's mixture data.
#include <torch/torch.h>

#include "genfw/export.hpp"
#include "genfw/options.hpp"

namespace genfw {

struct GENFW_API GaussianMixture {
  torch::Tensor means;    ///< [K, D] float64
  torch::Tensor weights;  ///< [K] float64, sums to 1
  torch::Tensor stds;     ///< [K] float64, per-component isotropic std

  /// Checks shapes, positivity, and normalises the weights.
  GaussianMixture(torch::Tensor means, torch::Tensor weights, torch::Tensor stds);
  static GaussianMixture from_options(const Matrix& means, const std::vector<double>& weights,
                                      const std::vector<double>& stds);

  int64_t dim() const { return means.size(1); }
  /// Law of scale·X + N(0, noise_variance I): means·scale, s² → scale²s² + noise_variance.
  /// (VE: scale 1, noise σ²; VP: scale √ᾱ, noise 1−ᾱ.)
  GaussianMixture transformed(double scale, double noise_variance) const;

  // x is [N, D] (any dtype/device); results in x's dtype and device.
  torch::Tensor log_prob(const torch::Tensor& x) const;          ///< [N]
  torch::Tensor score(const torch::Tensor& x) const;             ///< ∇ log p, [N, D]
  torch::Tensor responsibilities(const torch::Tensor& x) const;  ///< p(k | x), [N, K]
  /// Per-sample noise: score of the law of X + N(0, σ_i² I) at x_i, σ [N].
  torch::Tensor score_with_noise(const torch::Tensor& x, const torch::Tensor& sigma) const;
  /// Same for a VP marginal with per-sample ᾱ [N] (law of √ᾱ X + √(1−ᾱ) ε).
  torch::Tensor score_vp(const torch::Tensor& x, const torch::Tensor& alpha_bar) const;
  /// Draws n samples with torch's global generator, float64 [n, D] on CPU.
  torch::Tensor sample(int64_t n) const;
  /// Index of the nearest mean for each x [N] → int64 [N] (mode assignment in tests).
  torch::Tensor nearest_component(const torch::Tensor& x) const;

 private:
  // Per-sample component parameters: mean scale a_i and variance v_ik.
  torch::Tensor log_components(const torch::Tensor& x, const torch::Tensor& scale,
                               const torch::Tensor& variance) const;
  torch::Tensor score_general(const torch::Tensor& x, const torch::Tensor& scale,
                              const torch::Tensor& noise_variance) const;
};

}  // namespace genfw
