#pragma once
/// Improved precision and recall (Kynkäänniemi et al. 2019, "Improved
/// Precision and Recall Metric for Assessing Generative Models", eq. 1–2):
/// each set's manifold is the union of the balls reaching every feature's k-th
/// nearest neighbour in its own set (NND_k), boundary included;
///   precision = |{samples inside the real manifold}| / |samples|
///   recall    = |{real features inside the samples' manifold}| / |real|.
#include <torch/torch.h>

#include "genfw/nearest_neighbours.hpp"

namespace genfw::metric {

struct PrecisionRecall {
  double precision = 0.0;
  double recall = 0.0;
};

/// Fraction of `queries` inside the union of the k-NN balls of `manifold`.
inline double fraction_inside_manifold(const torch::Tensor& queries, const torch::Tensor& manifold, int64_t k) {
  auto radii = knn::kth_neighbour_radii(manifold, k);
  auto inside = knn::ball_membership(queries, manifold, radii, knn::BallBoundary::closed).balls_per_query.gt(0);
  return inside.to(torch::kFloat64).mean().item<double>();
}

/// real, samples: [N, F] and [M, F] features (M, N ≥ k + 1).
inline PrecisionRecall improved_precision_recall(const torch::Tensor& real, const torch::Tensor& samples, int64_t k) {
  return {fraction_inside_manifold(samples, real, k), fraction_inside_manifold(real, samples, k)};
}

}  // namespace genfw::metric
