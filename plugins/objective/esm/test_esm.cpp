#include <gtest/gtest.h>

#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::Matrix;
using genfw::testing::context_for;
using genfw::testing::make;

namespace {
// Gaussian data x ~ N(μ, s²I), D = 3, and its exact score through a one-component analytic_gmm.
const std::vector<double> kMu{1.0, -2.0, 0.5};
const double kStd = 1.5;

std::unique_ptr<genfw::Model> exact_gaussian() {
  return make<genfw::Model>(Kind::model, "analytic_gmm",
                            {{"means", Matrix{kMu}}, {"weights", std::vector<double>{1.0}},
                             {"stds", std::vector<double>{kStd}}, {"sigma_begin", 0.5},
                             {"sigma_end", 0.5}, {"num_levels", int64_t(1)}},
                            context_for({3}));
}
genfw::Batch gaussian_batch(int64_t n) {
  auto mu = torch::tensor(kMu, torch::kFloat64);
  return {(mu + kStd * torch::randn({n, 3}, torch::kFloat64)), {}};
}
}  // namespace

// Closed form (judged-by test 3): with x̃ = x + σz ~ N(μ, vI), v = s² + σ², and
// the exact score −(x̃−μ)/v: tr ∂s = −D/v, E½‖s‖² = D/(2v), so ESM = −D/(2v).
// Here D = 3, s = 1.5, σ = 0.5 (the model's only level, chosen by sigma = 0):
// −0.6. The per-sample value has std √(D/2)/v ≈ 0.49; with 40000 samples the
// s.e. is 0.0025, tolerance 0.015 (6 s.e.). A sign error in the trace would
// give +1.8, a missing ½ −0.0.
TEST(Esm, ExactScoreGivesClosedForm) {
  torch::manual_seed(0);
  auto model = exact_gaussian();
  auto esm = make<genfw::LossObjective>(Kind::objective, "esm", {}, context_for({3}));
  const double v = kStd * kStd + 0.25;
  EXPECT_NEAR(esm->loss(*model, gaussian_batch(40000)).item<double>(), -3.0 / (2 * v), 0.015);
  // An explicit sigma perturbs by that σ and evaluates the model there.
  auto esm1 = make<genfw::LossObjective>(Kind::objective, "esm", {{"sigma", 1.0}}, context_for({3}));
  EXPECT_NEAR(esm1->loss(*model, gaussian_batch(40000)).item<double>(), -3.0 / (2 * (kStd * kStd + 1.0)), 0.015);
}

TEST(Esm, RefusesHighDimensionalData) {
  try {
    make<genfw::LossObjective>(Kind::objective, "esm", {}, context_for({1, 28, 28}));
    FAIL() << "esm accepted 784-dimensional data";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_dim"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make<genfw::LossObjective>(Kind::objective, "esm", {{"max_dim", int64_t(1000)}},
                                             context_for({1, 28, 28})));
}
