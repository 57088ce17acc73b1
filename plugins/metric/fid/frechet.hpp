#pragma once
/// Fréchet distance between Gaussians (Fréchet 1957; FID, Heusel et al. 2017).
///   d² = ‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)
/// computed in float64 through the symmetric form
///   Tr((Σ₁Σ₂)^½) = Tr((Σ₁^½ Σ₂ Σ₁^½)^½)     (equal for PSD Σ₁, Σ₂: similar matrices)
/// with symmetric eigendecompositions, so no complex sqrtm is needed.
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "genfw/error.hpp"
#include "genfw/features.hpp"

namespace genfw::metric {

struct FrechetResult {
  double distance = 0.0;
  bool used_offset = false;  ///< εI was added to both covariances (pytorch-fid's fallback)
};

namespace detail {
/// Symmetric PSD square root through eigh, eigenvalues clamped at 0.
inline torch::Tensor psd_sqrt(const torch::Tensor& matrix) {
  auto [values, vectors] = torch::linalg_eigh(matrix);
  return (vectors * values.clamp_min(0.0).sqrt().unsqueeze(0)).mm(vectors.t());
}
/// True when a symmetric matrix has an eigenvalue below −tolerance·max|λ|.
inline bool significantly_negative(const torch::Tensor& eigenvalues, double tolerance) {
  double largest = eigenvalues.abs().max().item<double>();
  double smallest = eigenvalues.min().item<double>();
  return smallest < -tolerance * std::max(largest, 1e-300);
}
}  // namespace detail

/// Fréchet distance of N(μ₁, Σ₁) and N(μ₂, Σ₂). If the computation is not
/// finite, or a covariance or the inner product Σ₁^½Σ₂Σ₁^½ has eigenvalues
/// significantly below zero (relative tolerance `tolerance`; for sqrtm this is
/// a "significant imaginary part"), εI is added to both covariances and it is
/// retried, as pytorch-fid does; if that still fails a genfw::Error is thrown.
inline FrechetResult frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1,
                                      const torch::Tensor& mu2, const torch::Tensor& sigma2,
                                      double eps = 1e-6, double tolerance = 1e-10) {
  auto m1 = mu1.to(torch::kCPU, torch::kFloat64).flatten();
  auto m2 = mu2.to(torch::kCPU, torch::kFloat64).flatten();
  auto s1 = sigma1.to(torch::kCPU, torch::kFloat64);
  auto s2 = sigma2.to(torch::kCPU, torch::kFloat64);
  GENFW_CHECK(m1.sizes() == m2.sizes(), "frechet_distance: means differ in size (", m1.size(0),
              " vs ", m2.size(0), ")");
  const int64_t d = m1.size(0);
  GENFW_CHECK(s1.dim() == 2 && s1.size(0) == d && s1.size(1) == d && s2.sizes() == s1.sizes(),
              "frechet_distance: covariances must be [", d, ", ", d, "], got ", s1.sizes(), " and ",
              s2.sizes());
  GENFW_CHECK(torch::isfinite(m1).all().item<bool>() && torch::isfinite(m2).all().item<bool>() &&
                  torch::isfinite(s1).all().item<bool>() && torch::isfinite(s2).all().item<bool>(),
              "frechet_distance: statistics contain NaN or infinity");
  // Symmetrise: covariances computed in float32 elsewhere may be off by rounding.
  s1 = 0.5 * (s1 + s1.t());
  s2 = 0.5 * (s2 + s2.t());
  const double mean_term = (m1 - m2).square().sum().item<double>();

  auto attempt = [&](const torch::Tensor& a, const torch::Tensor& b, double* out) {
    auto ea = torch::linalg_eigvalsh(a);
    auto eb = torch::linalg_eigvalsh(b);
    if (detail::significantly_negative(ea, tolerance) || detail::significantly_negative(eb, tolerance))
      return false;
    auto root = detail::psd_sqrt(a);
    auto inner = root.mm(b).mm(root);
    inner = 0.5 * (inner + inner.t());
    auto ei = torch::linalg_eigvalsh(inner);
    if (!torch::isfinite(ei).all().item<bool>() || detail::significantly_negative(ei, tolerance))
      return false;
    double trace_sqrt = ei.clamp_min(0.0).sqrt().sum().item<double>();
    double value = mean_term + a.trace().item<double>() + b.trace().item<double>() - 2.0 * trace_sqrt;
    if (!std::isfinite(value)) return false;
    *out = value;
    return true;
  };

  FrechetResult result;
  if (attempt(s1, s2, &result.distance)) return result;
  auto offset = eps * torch::eye(d, torch::kFloat64);
  result.used_offset = true;
  // The offset adds 2εd to the traces and ~2εd to the cross term; they cancel to O(ε).
  GENFW_CHECK(attempt(s1 + offset, s2 + offset, &result.distance),
              "frechet_distance: the product of the covariances has a significant imaginary square "
              "root (eigenvalues significantly below zero even after adding ", eps,
              "·I); the statistics are not valid covariances");
  return result;
}

inline FrechetResult frechet_distance(const GaussianStatistics& a, const GaussianStatistics& b,
                                      double eps = 1e-6) {
  return frechet_distance(a.mean, a.covariance, b.mean, b.covariance, eps);
}

}  // namespace genfw::metric
