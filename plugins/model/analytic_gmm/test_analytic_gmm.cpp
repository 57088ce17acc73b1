#include <gtest/gtest.h>

#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::Matrix;
using genfw::testing::context_for;
using genfw::testing::make;

namespace {
std::unique_ptr<genfw::Model> paper_mixture() {
  return make<genfw::Model>(Kind::model, "analytic_gmm", {}, context_for({2}, -8, 8));
}
}  // namespace

// score(x, σ) must be ∇x log of the mixture with stds √(s² + σ²): computed here
// independently by autograd through log_prob of a second model built that way.
TEST(AnalyticGmm, ScoreIsGradientOfNoisedLogDensity) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "analytic_gmm",
                                  {{"means", Matrix{{-1.0, 0.5, 2.0}, {1.5, -1.0, 0.0}}},
                                   {"weights", std::vector<double>{0.3, 0.7}},
                                   {"stds", std::vector<double>{0.5, 1.2}}},
                                  context_for({3}));
  const double sigma = 0.8;
  auto noised = make<genfw::Model>(
      Kind::model, "analytic_gmm",
      {{"means", Matrix{{-1.0, 0.5, 2.0}, {1.5, -1.0, 0.0}}},
       {"weights", std::vector<double>{0.3, 0.7}},
       {"stds", std::vector<double>{std::sqrt(0.25 + sigma * sigma), std::sqrt(1.44 + sigma * sigma)}}},
      context_for({3}));
  auto x = (2 * torch::randn({64, 3}, torch::kFloat64)).requires_grad_(true);
  auto logp = genfw::as<genfw::DensityModel>(*noised)->log_prob(x).sum();
  auto reference = torch::autograd::grad({logp}, {x})[0];
  auto s = genfw::as<genfw::ScoreModel>(*model)->score(x.detach(), torch::full({64}, sigma, torch::kFloat64));
  EXPECT_LT((s - reference).abs().max().item<double>(), 1e-10);
}

// Independent check of log_prob: a one-component 2-D Gaussian by hand.
TEST(AnalyticGmm, LogProbOfOneGaussian) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "analytic_gmm",
                                  {{"means", Matrix{{1.0, -2.0}}}, {"weights", std::vector<double>{1.0}},
                                   {"stds", std::vector<double>{2.0}}},
                                  context_for({2}));
  auto x = torch::randn({10, 2}, torch::kFloat64);
  auto mu = torch::tensor({1.0, -2.0}, torch::kFloat64);
  auto expected = -0.5 * (x - mu).pow(2).sum(1) / 4.0 - std::log(2 * M_PI * 4.0);
  auto got = genfw::as<genfw::DensityModel>(*model)->log_prob(x);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-10);
}

// Exact sampling: 1/5 of the samples near (−5,−5), 4/5 near (5,5); temperature
// 0.5 halves the std. 20000 samples: the binomial s.e. of the fraction is 0.003,
// the s.e. of a std estimate ~0.005; tolerances are ≥ 5 s.e.
TEST(AnalyticGmm, SamplesHaveTheMixtureWeightsAndTemperatureScalesStd) {
  torch::manual_seed(0);
  auto model = paper_mixture();
  auto density = genfw::as<genfw::DensityModel>(*model);
  auto x = density->sample(20000, 1.0);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{20000, 2}));
  auto right = (x.sum(1) > 0);
  EXPECT_NEAR(right.to(torch::kFloat64).mean().item<double>(), 0.8, 0.02);
  auto cold = density->sample(20000, 0.5);
  auto cold_right = cold.index({cold.sum(1) > 0});
  EXPECT_NEAR((cold_right - 5.0).std().item<double>(), 0.5, 0.03);
}

// Image-shaped input is flattened and restored; a dimension mismatch is refused.
TEST(AnalyticGmm, ImageShapesAndMisuse) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "analytic_gmm",
                                  {{"means", Matrix{{0.0, 0.0, 0.0, 0.0}}}, {"weights", std::vector<double>{1.0}}},
                                  context_for({1, 2, 2}));
  auto x = torch::randn({5, 1, 2, 2});
  auto s = genfw::as<genfw::ScoreModel>(*model)->score(x, torch::full({5}, 1.0));
  ASSERT_EQ(s.sizes(), x.sizes());
  EXPECT_LT((s + x / 2.0).abs().max().item<double>(), 1e-5);  // N(0, I) ∗ N(0, I): score −x/2
  EXPECT_EQ(genfw::as<genfw::DensityModel>(*model)->sample(3, 1.0).sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
  EXPECT_THROW(make<genfw::Model>(Kind::model, "analytic_gmm", {}, context_for({3})), genfw::Error);
  EXPECT_THROW(make<genfw::Model>(Kind::model, "analytic_gmm", {{"weights", std::vector<double>{1.0}}},
                                  context_for({2})),
               genfw::Error);
}
