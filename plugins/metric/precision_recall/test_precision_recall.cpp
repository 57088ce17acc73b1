#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "genfw/testing.hpp"

#include "precision_recall.hpp"
#include "../../../data/fixtures/knn_references.hpp"
#include "../../../data/fixtures/metric_datasets.hpp"

using namespace genfw;
namespace mt = genfw::metric::testing;
namespace ref = genfw::metric::testing::naive;

// The blocked k-NN distances equal a naive float64 loop over Σ (x − y)², for
// blocks smaller than a row, of a few rows, and the default (one block).
TEST(NearestNeighbours, BlockedDistancesMatchANaiveLoop) {
  torch::manual_seed(0);
  auto points = torch::randn({53, 6}), queries = torch::randn({37, 6});
  for (int64_t block : {int64_t(5), int64_t(64), knn::default_block_elements}) {
    auto nearest = knn::nearest_distances(queries, points, 4, block);
    auto radii = knn::kth_neighbour_radii(points, 3, block);
    for (int64_t q = 0; q < 37; ++q) {
      auto expected = ref::sorted_distances(queries, q, points, -1);
      for (int64_t j = 0; j < 4; ++j) EXPECT_NEAR(nearest[q][j].item<double>(), expected[j], 1e-9) << block;
    }
    for (int64_t i = 0; i < 53; ++i) {
      EXPECT_NEAR(radii[i].item<double>(), ref::sorted_distances(points, i, points, i)[2], 1e-9) << block;
    }
    auto balls = knn::ball_membership(queries, points, radii, knn::BallBoundary::closed, block);
    auto naive_counts = ref::balls_holding_each_query(queries, points, radii, true);
    for (int64_t q = 0; q < 37; ++q) EXPECT_EQ(balls.balls_per_query[q].item<int64_t>(), naive_counts[q]) << block;
  }
}

// One block holds at most block_elements distances, whatever N and M: the
// rows of a block are block_elements / columns (checked through the result
// of a block budget of 1, one distance at a time).
TEST(NearestNeighbours, OneDistanceAtATimeGivesTheSameAnswer) {
  torch::manual_seed(1);
  auto points = torch::randn({20, 3});
  EXPECT_TRUE(knn::kth_neighbour_radii(points, 2, 1).equal(knn::kth_neighbour_radii(points, 2)));
}

TEST(NearestNeighbours, RefusesTooFewPointsNamingK) {
  auto points = torch::randn({3, 2});
  try {
    knn::kth_neighbour_radii(points, 3);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("k = 3 need at least 4 points, got 3"), std::string::npos) << e.what();
  }
}

TEST(NearestNeighbours, EvenlyStridedRowsCoverTheSet) {
  auto x = torch::arange(10, torch::kFloat32).unsqueeze(1);
  EXPECT_TRUE(knn::evenly_strided_rows(x, 4).squeeze(1).equal(torch::tensor({0.0f, 3.0f, 6.0f, 9.0f})));
  EXPECT_TRUE(knn::evenly_strided_rows(x, 12).equal(x));
}

// A case worked by hand, 1-D, k = 1. Real {0, 1, 3, 7}: NND_1 = 1, 1, 2, 4, balls
// [−1, 1], [0, 2], [1, 5], [3, 11]. Samples {0.5, 12, 2.5}: NND_1 = 2, 9.5, 2,
// balls [−1.5, 2.5], [2.5, 21.5], [0.5, 4.5]. Precision: 0.5 and 2.5 are inside
// the real balls, 12 is not → 2/3. Recall: every real point is inside → 1.
TEST(PrecisionRecall, HandWorkedExample) {
  auto real = torch::tensor({0.0, 1.0, 3.0, 7.0}).unsqueeze(1);
  auto samples = torch::tensor({0.5, 12.0, 2.5}).unsqueeze(1);
  auto pr = metric::improved_precision_recall(real, samples, 1);
  EXPECT_DOUBLE_EQ(pr.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(pr.recall, 1.0);
}

// The paper's balls are closed (eq. 1: ‖φ − φ'‖ ≤ NND_k(φ')): a sample exactly
// at a real ball's radius is inside. Real {0, 1}, radii 1; sample 2 at distance
// 1 from the real point 1 → precision 1.
TEST(PrecisionRecall, BallsAreClosed) {
  auto real = torch::tensor({0.0, 1.0}).unsqueeze(1);
  auto samples = torch::tensor({2.0, 5.0}).unsqueeze(1);
  EXPECT_DOUBLE_EQ(metric::improved_precision_recall(real, samples, 1).precision, 0.5);
}

// Against the published formula written as a naive loop (float64), on 8-D
// features of two different Gaussians: every value equal.
TEST(PrecisionRecall, MatchesTheNaiveFormula) {
  torch::manual_seed(2);
  auto real = torch::randn({150, 8}), samples = torch::randn({120, 8}) * 1.3 + 0.4;
  for (int64_t k : {1, 3, 5}) {
    auto pr = metric::improved_precision_recall(real, samples, k);
    EXPECT_DOUBLE_EQ(pr.precision, ref::fraction_in_manifold(samples, real, k, true)) << k;
    EXPECT_DOUBLE_EQ(pr.recall, ref::fraction_in_manifold(real, samples, k, true)) << k;
  }
}

// The invariants of the paper, on a mixture of 8 well separated 4-D modes,
// N = M = 1600: identical distributions give precision ≈ recall (both sets
// play symmetric roles), both high; dropping half the modes keeps precision
// and halves recall; 20% far outliers lower precision by about 0.2 and leave
// recall alone.
TEST(PrecisionRecall, ModeDroppingLowersRecallOutliersLowerPrecision) {
  torch::manual_seed(3);
  const int64_t n = 1600;
  auto real = mt::mixture_features(n, 8, 4);
  auto same = metric::improved_precision_recall(real, mt::mixture_features(n, 8, 4), 3);
  auto half_modes = metric::improved_precision_recall(real, mt::mixture_features(n, 4, 4), 3);
  auto with_outliers = mt::mixture_features(n, 8, 4);
  with_outliers.slice(0, 0, n / 5).copy_(torch::randn({n / 5, 4}) + 100.0);
  auto outliers = metric::improved_precision_recall(real, with_outliers, 3);
  std::printf("[ precision_recall ] same %.4f %.4f, half the modes %.4f %.4f, 20%% outliers %.4f %.4f\n",
              same.precision, same.recall, half_modes.precision, half_modes.recall, outliers.precision,
              outliers.recall);
  EXPECT_GT(same.precision, 0.9);
  EXPECT_NEAR(same.precision, same.recall, 0.03);
  EXPECT_NEAR(half_modes.precision, same.precision, 0.03);
  EXPECT_NEAR(half_modes.recall, 0.5 * same.recall, 0.05);
  EXPECT_NEAR(outliers.precision, 0.8 * same.precision, 0.03);
  EXPECT_NEAR(outliers.recall, same.recall, 0.05);
}

// End to end through the plugin and the run's feature service (identity
// extractor on 4-D vectors): equal sets by default (300 samples against 300 of
// the 2000 reference examples), the values those sets give, the provenance.
TEST(PrecisionRecallPlugin, EndToEndOnEqualSets) {
  torch::manual_seed(4);
  auto info = mt::vector_info("pr_gauss4", 4);
  auto reference = torch::randn({2000, 4});
  mt::TensorDataset train(info, torch::randn({100, 4})), test(info, reference);
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  context.samples = torch::randn({300, 4}) + 0.5;
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "precision_recall");
  auto result = metric->compute(context);
  auto expected = metric::improved_precision_recall(knn::evenly_strided_rows(reference, 300), context.samples, 3);
  EXPECT_DOUBLE_EQ(result.values.at("precision"), expected.precision);
  EXPECT_DOUBLE_EQ(result.values.at("recall"), expected.recall);
  EXPECT_EQ(result.provenance.at("real_compared"), "300");
  EXPECT_EQ(result.provenance.at("samples"), "300 of 300");
  EXPECT_EQ(result.provenance.at("k"), "3");
  EXPECT_EQ(result.provenance.at("reference_count"), "2000 of 2000");
}

TEST(PrecisionRecallPlugin, TooFewSamplesNameTheOption) {
  auto info = mt::vector_info("pr_small", 2);
  mt::TensorDataset train(info, torch::randn({10, 2})), test(info, torch::randn({50, 2}));
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  context.samples = torch::randn({3, 2});
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "precision_recall");
  try {
    metric->compute(context);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("metric 'precision_recall': option 'k' = 3 needs at least 4 examples"),
              std::string::npos)
        << e.what();
  }
}
