#pragma once
/// Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity
/// Metrics for Generative Models", eq. 3–4), with B(X_i, NND_k(X_i)) the open
/// ball around real feature X_i reaching its k-th nearest real neighbour:
///   density  = 1/(k M) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]
///   coverage = 1/N Σ_i 1[∃ j : Y_j ∈ B(X_i, NND_k(X_i))]
/// for N real features X and M samples Y. Open balls (<), as the authors' code
/// (clovaai/generative-evaluation-prdc) compares.
#include <torch/torch.h>

#include "genfw/nearest_neighbours.hpp"

namespace genfw::metric {

struct DensityCoverage {
  double density = 0.0;
  double coverage = 0.0;
};

/// real, samples: [N, F] and [M, F] features (N ≥ k + 1).
inline DensityCoverage density_and_coverage(const torch::Tensor& real, const torch::Tensor& samples, int64_t k) {
  auto radii = knn::kth_neighbour_radii(real, k);
  auto balls = knn::ball_membership(samples, real, radii, knn::BallBoundary::open);
  const double density = balls.balls_per_query.to(torch::kFloat64).sum().item<double>() / double(k * samples.size(0));
  const double coverage = balls.centre_reached.to(torch::kFloat64).mean().item<double>();
  return {density, coverage};
}

/// E[coverage] when samples and real data come from one distribution (Naeem
/// et al. 2020, Lemma 2): a real ball misses every sample when its k nearest
/// among the other N−1 real and M sample points are all real, so
///   E = 1 − Π_{i=1..k} (N − i) / (N + M − i)   → 1 − 2^−k when M = N → ∞.
inline double expected_coverage_same_distribution(int64_t real, int64_t samples, int64_t k) {
  double all_real = 1.0;
  for (int64_t i = 1; i <= k; ++i) all_real *= double(real - i) / double(real + samples - i);
  return 1.0 - all_real;
}

}  // namespace genfw::metric
