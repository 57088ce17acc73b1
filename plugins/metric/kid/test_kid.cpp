#include <gtest/gtest.h>

#include "genfw/testing.hpp"

#include "kid.hpp"
#include "../../../data/fixtures/metric_datasets.hpp"

using namespace genfw;
namespace mt = genfw::metric::testing;

// MMD²_u against a naive triple loop over the definition (float64).
TEST(Kid, UnbiasedMmdMatchesNaiveSum) {
  torch::manual_seed(0);
  auto x = torch::randn({7, 3}, torch::kFloat64), y = torch::randn({5, 3}, torch::kFloat64) + 0.3;
  auto k = [](const torch::Tensor& a, const torch::Tensor& b) {
    return std::pow(a.dot(b).item<double>() / 3.0 + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j)
      if (i != j) xx += k(x[i], x[j]);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j)
      if (i != j) yy += k(y[i], y[j]);
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 5; ++j) xy += k(x[i], y[j]);
  double expected = xx / 42.0 + yy / 20.0 - 2.0 * xy / 35.0;
  EXPECT_NEAR(genfw::metric::mmd2_unbiased(x, y), expected, 1e-12 * (1 + std::abs(expected)));
  // A subset as large as both sets is the whole set whatever the permutation:
  // every subset gives the same value, std 0.
  auto whole = genfw::metric::kernel_inception_distance(x.slice(0, 0, 5), y, 10, 1000);
  EXPECT_EQ(whole.subset_size, 5);
  EXPECT_NEAR(whole.mean, genfw::metric::mmd2_unbiased(x.slice(0, 0, 5), y), 1e-12);
  EXPECT_NEAR(whole.std, 0.0, 1e-12);
}

// Same distribution: KID is 0 in expectation. The subset mean's error has two
// parts: Monte Carlo over subsets (std/√subsets) and the finite pool (under H0
// the estimator's std scales as 1/m, so ≈ std·m/n for pool size n): we assert
// |mean| < 3·std·√(1/subsets + (m/n)²). Different distributions (mean shifted
// by 0.5 in 16-D): KID > 20·std/√subsets and > 0.
TEST(Kid, ZeroForSameDistributionPositiveOtherwise) {
  torch::manual_seed(0);
  const int64_t n = 4000, m = 400, subsets = 100;
  auto x = torch::randn({n, 16}), y = torch::randn({n, 16});
  auto same = genfw::metric::kernel_inception_distance(x, y, subsets, m);
  double bound = 3.0 * same.std * std::sqrt(1.0 / subsets + double(m * m) / double(n * n));
  EXPECT_LT(std::abs(same.mean), bound) << "mean " << same.mean << " std " << same.std;
  auto shifted = genfw::metric::kernel_inception_distance(x, y + 0.5, subsets, m);
  EXPECT_GT(shifted.mean, 20.0 * shifted.std / std::sqrt(double(subsets)));
  EXPECT_GT(shifted.mean, 10.0 * std::abs(same.mean));
}

// End to end with the identity extractor on 4-D vectors.
TEST(KidPlugin, EndToEnd) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss4", 4);
  mt::TensorDataset train(info, torch::randn({100, 4})), test(info, torch::randn({3000, 4}));
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  auto kid = genfw::testing::make<Metric>(Kind::metric, "kid", {{"subsets", int64_t(50)}, {"subset_size", int64_t(500)}});
  auto features = genfw::testing::attach_features(context);
  context.samples = torch::randn({3000, 4});
  auto same = kid->compute(context);
  context.samples = torch::randn({3000, 4}) * 1.5 + 0.5;
  auto different = kid->compute(context);
  const double s = same.values.at("kid_std");
  EXPECT_LT(std::abs(same.values.at("kid")), 3.0 * s * std::sqrt(1.0 / 50 + (500.0 / 3000) * (500.0 / 3000)));
  EXPECT_GT(different.values.at("kid"), 20.0 * different.values.at("kid_std") / std::sqrt(50.0));
  // Raw coordinates: standardized by the reference first (standardize = "auto").
  EXPECT_EQ(different.provenance.at("estimator"), "unbiased MMD^2, kernel (x.y/d+1)^3, 50 subsets of 500, features "
                                                  "standardized by the reference's mean and std");
  EXPECT_EQ(different.provenance.at("extractor"), "identity");  // auto → identity for vectors
  EXPECT_EQ(different.provenance.at("reference_count"), "3000 of 3000");
}

// standardize = "yes" is KID of the features scaled by the reference's mean and
// std, computed here by hand; "no" is the paper's KID of the raw features.
TEST(KidPlugin, StandardizeScalesByTheReference) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss3", 3);
  auto reference = torch::randn({2000, 3}) * torch::tensor({5.0, 1.0, 0.2}) + 3.0;
  mt::TensorDataset train(info, torch::randn({100, 3})), test(info, reference);
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  context.samples = torch::randn({2000, 3}) * 2.0 + 3.5;
  auto features = genfw::testing::attach_features(context);
  auto scaled = [&](const torch::Tensor& x) { return (x - reference.mean(0)) / reference.std(0); };
  for (const std::string setting : {"yes", "no"}) {
    auto kid = genfw::testing::make<Metric>(Kind::metric, "kid", {{"subsets", int64_t(20)}, {"subset_size", int64_t(300)},
                                                                  {"standardize", setting}});
    torch::manual_seed(1);
    auto value = kid->compute(context).values.at("kid");
    torch::manual_seed(1);
    auto by_hand = setting == "yes" ? genfw::metric::kernel_inception_distance(scaled(context.samples), scaled(reference), 20, 300)
                                    : genfw::metric::kernel_inception_distance(context.samples, reference, 20, 300);
    EXPECT_NEAR(value, by_hand.mean, 1e-6 * (1 + std::abs(by_hand.mean))) << setting;
  }
}

// One run's metrics share its features: FID and KID of one sample set run the
// extractor over the samples once, and a new sample set once more.
TEST(KidPlugin, SharesTheRunsFeaturesWithFid) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss2", 2);
  mt::TensorDataset train(info, torch::randn({100, 2})), test(info, torch::randn({500, 2}));
  MetricContext context;
  context.data = info;
  context.train_data = &train;
  context.test_data = &test;
  auto features = genfw::testing::attach_features(context);
  auto kid = genfw::testing::make<Metric>(Kind::metric, "kid", {{"subsets", int64_t(5)}, {"subset_size", int64_t(100)}});
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid");
  context.samples = torch::randn({300, 2});
  kid->compute(context);
  fid->compute(context);
  EXPECT_EQ(features->sample_extractions(), 1);
  context.samples = torch::randn({300, 2});
  fid->compute(context);
  EXPECT_EQ(features->sample_extractions(), 2);
}
