#pragma once
/// Exact nearest neighbours in feature space (Euclidean), for the metrics that
/// read samples against real data through k-NN balls: improved precision and
/// recall, density and coverage, the memorization check.
///
/// Distances are computed in float64 a block at a time on the inputs' device,
/// so no N×M matrix is ever held whole: 10 000 × 10 000 distances would be
/// 800 MB in float64; a block is at most `block_elements` values (32 MB by
/// default). Inputs are [N, F] features of any float dtype, on one device;
/// results are on the CPU.
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw::knn {

/// Distances held at once (float64 values) by default: 4 Mi = 32 MB.
constexpr int64_t default_block_elements = int64_t(1) << 22;

/// ‖a_i − b_j‖ for every pair of rows, float64 [n, m], through
/// ‖a‖² + ‖b‖² − 2 a·b (clamped at 0): one block's worth; callers block.
GENFW_API torch::Tensor pairwise_distances(const torch::Tensor& a, const torch::Tensor& b);

/// The distances from each query to its k nearest points, ascending, float64
/// [Q, k]. A query that is also one of the points finds itself at distance 0.
GENFW_API torch::Tensor nearest_distances(const torch::Tensor& queries, const torch::Tensor& points, int64_t k,
                                          int64_t block_elements = default_block_elements);

/// The radius of each point's k-NN ball: the distance to its k-th nearest
/// neighbour in its own set, itself excluded, float64 [N] (Kynkäänniemi et al.
/// 2019, NND_k; Naeem et al. 2020). Needs N ≥ k + 1.
GENFW_API torch::Tensor kth_neighbour_radii(const torch::Tensor& points, int64_t k,
                                            int64_t block_elements = default_block_elements);

/// Whether a distance equal to the radius is inside the ball.
enum class BallBoundary {
  closed,  ///< ‖x − c‖ ≤ r: Kynkäänniemi et al. 2019, eq. 1, and their code
  open,    ///< ‖x − c‖ < r: Naeem et al. 2020's code (prdc)
};

/// Which balls B(c_j, r_j) hold which queries, reduced both ways.
struct BallMembership {
  torch::Tensor balls_per_query;  ///< int64 [Q]: how many balls hold each query
  torch::Tensor centre_reached;   ///< bool [C]: whether any query lies in each ball
};
GENFW_API BallMembership ball_membership(const torch::Tensor& queries, const torch::Tensor& centres,
                                         const torch::Tensor& radii, BallBoundary boundary,
                                         int64_t block_elements = default_block_elements);

/// `count` rows of `features` at evenly strided indices (all of them when
/// count ≥ its rows): a subset that covers a class-ordered set, and the same
/// subset on every call.
GENFW_API torch::Tensor evenly_strided_rows(const torch::Tensor& features, int64_t count);

}  // namespace genfw::knn
