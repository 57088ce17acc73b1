#include "genfw/nearest_neighbours.hpp"
#include "genfw/evenly_strided.hpp"

#include <algorithm>
#include <functional>
#include <limits>

#include "genfw/error.hpp"

namespace genfw::knn {

namespace {

void check_features(const torch::Tensor& x, const char* what) {
  GENFW_CHECK(x.defined() && x.dim() == 2, "nearest neighbours: ", what, " must be a matrix [N, F], got ",
              x.defined() ? x.sizes() : torch::IntArrayRef{});
  GENFW_CHECK(x.is_floating_point(), "nearest neighbours: ", what, " must be floating point");
}

void check_same_width(const torch::Tensor& a, const torch::Tensor& b) {
  GENFW_CHECK(a.size(1) == b.size(1), "nearest neighbours: feature dimensions differ (", a.size(1), " and ",
              b.size(1), ")");
}

// Visits the distance matrix of queries × points one block at a time:
// visit(first query row, first point column, float64 block of distances).
// A block is at most `block_elements` values, so memory does not grow with N·M.
void for_each_distance_block(const torch::Tensor& queries, const torch::Tensor& points, int64_t block_elements,
                             const std::function<void(int64_t, int64_t, const torch::Tensor&)>& visit) {
  GENFW_CHECK(block_elements >= 1, "nearest neighbours: block_elements must be >= 1, got ", block_elements);
  const int64_t q = queries.size(0), m = points.size(0);
  const int64_t columns = std::max<int64_t>(1, std::min({m, block_elements, int64_t(8192)}));
  const int64_t rows = std::max<int64_t>(1, block_elements / columns);
  for (int64_t row = 0; row < q; row += rows) {
    auto query_block = queries.slice(0, row, std::min(q, row + rows));
    for (int64_t column = 0; column < m; column += columns) {
      visit(row, column, pairwise_distances(query_block, points.slice(0, column, std::min(m, column + columns))));
    }
  }
}

}  // namespace

torch::Tensor pairwise_distances(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  auto squared = x.square().sum(1, true) + y.square().sum(1).unsqueeze(0) - 2.0 * x.mm(y.t());
  return squared.clamp_min_(0.0).sqrt_();
}

torch::Tensor nearest_distances(const torch::Tensor& queries, const torch::Tensor& points, int64_t k,
                                int64_t block_elements) {
  check_features(queries, "queries");
  check_features(points, "points");
  check_same_width(queries, points);
  GENFW_CHECK(k >= 1 && k <= points.size(0), "nearest neighbours: k must be in [1, ", points.size(0),
              "] (the number of points), got ", k);
  const auto on_device = torch::TensorOptions().dtype(torch::kFloat64).device(queries.device());
  auto best = torch::full({queries.size(0), k}, std::numeric_limits<double>::infinity(), on_device);
  for_each_distance_block(queries, points, block_elements, [&](int64_t row, int64_t, const torch::Tensor& d) {
    // The k best so far and this block's k best: the k best of both.
    auto rows = best.slice(0, row, row + d.size(0));
    auto candidates = torch::cat({rows, std::get<0>(d.topk(std::min(k, d.size(1)), 1, false, true))}, 1);
    rows.copy_(std::get<0>(candidates.topk(k, 1, false, true)));
  });
  return best.cpu();
}

torch::Tensor kth_neighbour_radii(const torch::Tensor& points, int64_t k, int64_t block_elements) {
  GENFW_CHECK(k >= 1, "nearest neighbours: k must be >= 1, got ", k);
  check_features(points, "points");
  GENFW_CHECK(points.size(0) >= k + 1, "nearest neighbours: k-NN radii with k = ", k, " need at least ", k + 1,
              " points, got ", points.size(0));
  // Each point finds itself first (distance 0): its k-th other neighbour is the (k+1)-th.
  return nearest_distances(points, points, k + 1, block_elements).select(1, k).contiguous();
}

BallMembership ball_membership(const torch::Tensor& queries, const torch::Tensor& centres,
                               const torch::Tensor& radii, BallBoundary boundary, int64_t block_elements) {
  check_features(queries, "queries");
  check_features(centres, "centres");
  check_same_width(queries, centres);
  GENFW_CHECK(radii.dim() == 1 && radii.size(0) == centres.size(0), "nearest neighbours: ", centres.size(0),
              " centres need as many radii, got ", radii.sizes());
  auto r = radii.to(queries.device(), torch::kFloat64);
  BallMembership result;
  result.balls_per_query = torch::zeros({queries.size(0)}, torch::TensorOptions(torch::kLong).device(queries.device()));
  result.centre_reached = torch::zeros({centres.size(0)}, torch::TensorOptions(torch::kBool).device(queries.device()));
  for_each_distance_block(queries, centres, block_elements, [&](int64_t row, int64_t column, const torch::Tensor& d) {
    auto block_radii = r.slice(0, column, column + d.size(1)).unsqueeze(0);
    auto inside = boundary == BallBoundary::closed ? d.le(block_radii) : d.lt(block_radii);
    result.balls_per_query.slice(0, row, row + d.size(0)).add_(inside.sum(1));
    result.centre_reached.slice(0, column, column + d.size(1)).logical_or_(inside.any(0));
  });
  result.balls_per_query = result.balls_per_query.cpu();
  result.centre_reached = result.centre_reached.cpu();
  return result;
}

torch::Tensor evenly_strided_rows(const torch::Tensor& features, int64_t count) {
  const int64_t n = features.size(0);
  if (count >= n) return features;
  GENFW_CHECK(count >= 1, "nearest neighbours: a subset needs at least 1 row, got ", count);
  auto indices = evenly_strided_indices(count, n);
  return features.index_select(0, indices.to(features.device()));
}

}  // namespace genfw::knn
