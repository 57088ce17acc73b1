#pragma once
/// The memorization rule of Yoon et al. 2023 ("Diffusion Probabilistic Models
/// Generalize when They Fail to Memorize", ICML 2023 workshop SPIGM), also used
/// by Gu et al. 2023 ("On Memorization in Diffusion Models") and, with the same
/// threshold on a 50-neighbour mean, by Carlini et al. 2023: x is memorized when
///   ‖x − NN1(x)‖ / ‖x − NN2(x)‖ < 1/3,
/// NN1 and NN2 its nearest and second-nearest training examples. A sample three
/// times closer to one training example than to any other is a near copy of
/// it, not a point between examples; real held-out data rarely passes (the
/// metric measures how rarely, on the same number of test examples).
#include <torch/torch.h>

#include "genfw/nearest_neighbours.hpp"

namespace genfw::metric {

/// bool [Q]: which queries pass the distance-ratio test against `train` (≥ 2 rows).
inline torch::Tensor memorized_by_distance_ratio(const torch::Tensor& queries, const torch::Tensor& train,
                                                 double ratio) {
  auto nearest_two = knn::nearest_distances(queries, train, 2);
  return nearest_two.select(1, 0).lt(ratio * nearest_two.select(1, 1));
}

inline double fraction_memorized(const torch::Tensor& queries, const torch::Tensor& train, double ratio) {
  return memorized_by_distance_ratio(queries, train, ratio).to(torch::kFloat64).mean().item<double>();
}

}  // namespace genfw::metric
