#pragma once
/// Fréchet distance between Gaussians (Fréchet 1957; FID, Heusel et al. 2017).
///   d² = ‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)
/// computed in float64 through the symmetric form
///   Tr((Σ₁Σ₂)^½) = Tr((Σ₁^½ Σ₂ Σ₁^½)^½)     (equal for PSD Σ₁, Σ₂: similar matrices)
/// with symmetric eigendecompositions, so no complex sqrtm is needed.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <tuple>
#include <vector>
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

/// FID∞ (Chong & Forsyth 2020, "Effectively unbiased FID and Inception Score
/// and where to find them"): FID_N is biased upwards by a term ≈ k/N, so FID
/// is computed on random subsets of `points` sizes evenly spaced from
/// ⌈min_fraction·N⌉ to N (their 5 000…50 000 of 50 000: min_fraction 0.1), a
/// line FID_N = FID∞ + k·(1/N) is fitted by least squares, and its value at
/// 1/N = 0 is FID∞.
struct FidInfinity {
  double value = 0.0;  ///< the intercept FID∞
  double slope = 0.0;  ///< k
  std::vector<int64_t> sizes;
  std::vector<double> fids;
};

/// Least-squares line y = a + b·x; returns {a, b}.
inline std::pair<double, double> fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  GENFW_CHECK(x.size() == y.size() && x.size() >= 2, "fit_line: need at least 2 points");
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / double(x.size()), my += y[i] / double(y.size());
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
  GENFW_CHECK(sxx > 0, "fit_line: all x are equal");
  const double b = sxy / sxx;
  return {my - b * mx, b};
}

/// Each subset is drawn without replacement from its own permutation of the
/// features (generator seeded by `seed`: the same run gives the same FID∞).
inline FidInfinity fid_infinity(const torch::Tensor& features, const GaussianStatistics& reference, int64_t points,
                                double min_fraction, uint64_t seed) {
  const int64_t n = features.size(0);
  const int64_t smallest = std::max<int64_t>(2, int64_t(std::ceil(min_fraction * double(n))));
  GENFW_CHECK(points >= 2 && smallest < n, "metric 'fid': FID∞ needs at least 2 distinct subset sizes; with ", n,
              " samples and infinity_min_fraction = ", min_fraction, " there are none (draw more samples)");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  FidInfinity out;
  std::vector<double> inverse;
  for (int64_t k = 0; k < points; ++k) {
    const int64_t size = smallest + int64_t(std::llround(double(n - smallest) * double(k) / double(points - 1)));
    auto subset = features.index_select(0, torch::randperm(n, generator, torch::kLong).slice(0, 0, size));
    out.sizes.push_back(size);
    out.fids.push_back(frechet_distance(gaussian_statistics(subset), reference).distance);
    inverse.push_back(1.0 / double(size));
  }
  std::tie(out.value, out.slope) = fit_line(inverse, out.fids);
  return out;
}

}  // namespace genfw::metric
