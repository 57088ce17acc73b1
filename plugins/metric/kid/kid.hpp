#pragma once
/// Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"):
/// the unbiased MMD² estimate with the cubic polynomial kernel
/// k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "genfw/error.hpp"

namespace genfw::metric {

struct KidResult {
  double mean = 0.0;
  double std = 0.0;          ///< standard deviation over subsets (N−1)
  int64_t subsets = 0;
  int64_t subset_size = 0;   ///< m actually used (capped at both set sizes)
};

inline torch::Tensor polynomial_kernel(const torch::Tensor& x, const torch::Tensor& y) {
  const double d = double(x.size(1));
  return (x.mm(y.t()) / d + 1.0).pow(3);
}

/// Unbiased MMD²_u between two samples (sizes may differ, each ≥ 2), float64.
inline double mmd2_unbiased(const torch::Tensor& x, const torch::Tensor& y) {
  auto a = x.to(torch::kFloat64);
  auto b = y.to(torch::kFloat64);
  const double n = double(a.size(0)), m = double(b.size(0));
  auto kxx = polynomial_kernel(a, a);
  auto kyy = polynomial_kernel(b, b);
  auto kxy = polynomial_kernel(a, b);
  auto term_xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1.0));
  auto term_yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1.0));
  auto term_xy = kxy.sum() / (n * m);
  return (term_xx + term_yy - 2.0 * term_xy).item<double>();
}

/// KID of features x [N, F] and y [M, F]: `subsets` subsets of
/// min(subset_size, N, M) drawn without replacement from each, with torch's
/// global generator (the runner seeds it).
inline KidResult kernel_inception_distance(const torch::Tensor& x, const torch::Tensor& y,
                                           int64_t subsets = 100, int64_t subset_size = 1000) {
  GENFW_CHECK(x.dim() == 2 && y.dim() == 2 && x.size(1) == y.size(1),
              "kernel_inception_distance: features must be [N, F] and [M, F], got ", x.sizes(),
              " and ", y.sizes());
  GENFW_CHECK(subsets >= 1, "kernel_inception_distance: subsets must be >= 1, got ", subsets);
  const int64_t m = std::min({subset_size, x.size(0), y.size(0)});
  GENFW_CHECK(m >= 2, "kernel_inception_distance: need at least 2 samples in each set, got ",
              x.size(0), " and ", y.size(0));
  std::vector<double> values;
  values.reserve(subsets);
  for (int64_t s = 0; s < subsets; ++s) {
    auto ix = torch::randperm(x.size(0), torch::kLong).slice(0, 0, m).to(x.device());
    auto iy = torch::randperm(y.size(0), torch::kLong).slice(0, 0, m).to(y.device());
    values.push_back(mmd2_unbiased(x.index_select(0, ix), y.index_select(0, iy)));
  }
  KidResult result;
  result.subsets = subsets;
  result.subset_size = m;
  double sum = 0.0;
  for (double v : values) sum += v;
  result.mean = sum / double(subsets);
  double sq = 0.0;
  for (double v : values) sq += (v - result.mean) * (v - result.mean);
  result.std = subsets > 1 ? std::sqrt(sq / double(subsets - 1)) : 0.0;
  return result;
}

}  // namespace genfw::metric
