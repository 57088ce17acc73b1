#include <gtest/gtest.h>

#include "genfw/testing.hpp"

#include "density_coverage.hpp"
#include "../../../data/fixtures/knn_references.hpp"
#include "../../../data/fixtures/metric_datasets.hpp"

using namespace genfw;
namespace mt = genfw::metric::testing;
namespace ref = genfw::metric::testing::naive;

// Worked by hand, 1-D, k = 1. Real {0, 1, 3, 7}: NND_1 = 1, 1, 2, 4, open balls
// (−1, 1), (0, 2), (1, 5), (3, 11). Samples {0.5, 12, 2.5}: 0.5 is in 2 balls,
// 12 in none, 2.5 in 1 → density = 3 / (1·3) = 1; the balls of 0, 1 and 3 hold a
// sample, the ball of 7 none → coverage = 3/4.
TEST(DensityCoverage, HandWorkedExample) {
  auto real = torch::tensor({0.0, 1.0, 3.0, 7.0}).unsqueeze(1);
  auto samples = torch::tensor({0.5, 12.0, 2.5}).unsqueeze(1);
  auto dc = metric::density_and_coverage(real, samples, 1);
  EXPECT_DOUBLE_EQ(dc.density, 1.0);
  EXPECT_DOUBLE_EQ(dc.coverage, 0.75);
}

// prdc's balls are open (distance < NND_k): a sample exactly at the radius is
// outside. Real {0, 1}, radii 1; the sample 2 is at distance 1 from 1 → 0, 0.
TEST(DensityCoverage, BallsAreOpen) {
  auto real = torch::tensor({0.0, 1.0}).unsqueeze(1);
  auto dc = metric::density_and_coverage(real, torch::tensor({2.0, 5.0}).unsqueeze(1), 1);
  EXPECT_DOUBLE_EQ(dc.density, 0.0);
  EXPECT_DOUBLE_EQ(dc.coverage, 0.0);
}

// Against the paper's formulas written as naive loops (float64).
TEST(DensityCoverage, MatchesTheNaiveFormula) {
  torch::manual_seed(0);
  auto real = torch::randn({140, 8}), samples = torch::randn({110, 8}) * 0.8 + 0.3;
  for (int64_t k : {1, 5, 9}) {
    auto dc = metric::density_and_coverage(real, samples, k);
    EXPECT_NEAR(dc.density, ref::density(real, samples, k), 1e-12) << k;
    EXPECT_DOUBLE_EQ(dc.coverage, ref::coverage(real, samples, k)) << k;
  }
}

// Naeem et al. 2020, Lemma 2 at N = M: 1 − Π_{i=1..k} (N − i)/(2N − i). For
// k = 5, N = M = 2000: 0.968867...; the limit 1 − 2^−5 = 0.96875.
TEST(DensityCoverage, ExpectedCoverageOfOneDistribution) {
  EXPECT_NEAR(metric::expected_coverage_same_distribution(2000, 2000, 5), 0.968867, 1e-6);
  EXPECT_NEAR(metric::expected_coverage_same_distribution(1000000, 1000000, 5), 1.0 - 1.0 / 32.0, 1e-6);
  EXPECT_DOUBLE_EQ(metric::expected_coverage_same_distribution(2, 2, 1), 1.0 - 1.0 / 3.0);
}

// Samples from the data distribution: E[density] = 1 exactly (a sample is in a
// real ball with probability k/N) and E[coverage] as Lemma 2 says; over 4
// seeds of N = M = 2000 in 4-D (8 modes) the means are within 0.02 and 0.005.
// Dropping half the modes: each kept sample still lies in about k real balls,
// so density stays about 1 (fidelity is not lost), while coverage is Lemma 2
// in the kept modes (N/8 real against M/4 samples each) and 0 in the others:
// ½·(1 − Π (250 − i)/(750 − i)) = 0.4980. 20% far outliers lower density by a
// fifth and coverage to Lemma 2 with M = 1600 samples: 0.9470.
TEST(DensityCoverage, ExpectationsAndInvariants) {
  const int64_t n = 2000, k = 5;
  double density = 0, coverage = 0;
  for (int seed = 0; seed < 4; ++seed) {
    torch::manual_seed(10 + seed);
    auto dc = metric::density_and_coverage(mt::mixture_features(n, 8, 4), mt::mixture_features(n, 8, 4), k);
    density += dc.density / 4;
    coverage += dc.coverage / 4;
  }
  const double expected_coverage = metric::expected_coverage_same_distribution(n, n, k);
  torch::manual_seed(20);
  auto real = mt::mixture_features(n, 8, 4);
  auto half_modes = metric::density_and_coverage(real, mt::mixture_features(n, 4, 4), k);
  auto with_outliers = mt::mixture_features(n, 8, 4);
  with_outliers.slice(0, 0, n / 5).copy_(torch::randn({n / 5, 4}) + 100.0);
  auto outliers = metric::density_and_coverage(real, with_outliers, k);
  std::printf("[ density_coverage ] same %.4f %.4f (expected 1, %.4f), half the modes %.4f %.4f, 20%% outliers "
              "%.4f %.4f\n", density, coverage, expected_coverage, half_modes.density, half_modes.coverage,
              outliers.density, outliers.coverage);
  EXPECT_NEAR(density, 1.0, 0.02);
  EXPECT_NEAR(coverage, expected_coverage, 0.005);
  EXPECT_NEAR(half_modes.density, 1.0, 0.06);
  EXPECT_NEAR(half_modes.coverage, 0.5 * metric::expected_coverage_same_distribution(n / 8, n / 4, k), 0.01);
  EXPECT_NEAR(outliers.density, 0.8, 0.05);
  EXPECT_NEAR(outliers.coverage, metric::expected_coverage_same_distribution(n, n - n / 5, k), 0.01);
}

// Through the plugin: equal sets by default, the same values as the formula
// on those sets, Lemma 2's expectation in the provenance.
TEST(DensityCoveragePlugin, EndToEndOnEqualSets) {
  torch::manual_seed(5);
  auto info = mt::vector_info("dc_gauss3", 3);
  auto reference = torch::randn({1500, 3});
  mt::TensorDataset train(info, torch::randn({100, 3})), test(info, reference);
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  context.samples = torch::randn({400, 3}) * 1.2;
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "density_coverage", {{"count", int64_t(250)}});
  auto result = metric->compute(context);
  auto expected = metric::density_and_coverage(knn::evenly_strided_rows(reference, 250),
                                               knn::evenly_strided_rows(context.samples, 250), 5);
  EXPECT_DOUBLE_EQ(result.values.at("density"), expected.density);
  EXPECT_DOUBLE_EQ(result.values.at("coverage"), expected.coverage);
  EXPECT_EQ(result.provenance.at("samples"), "250 of 400");
  EXPECT_EQ(result.provenance.at("real_compared"), "250");
  EXPECT_EQ(result.provenance.at("coverage_if_same_distribution"),
            shortest_number(metric::expected_coverage_same_distribution(250, 250, 5)));
}
