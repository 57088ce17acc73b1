// edm (Karras et al. 2022, Alg. 2) against exact scores.
#include <gtest/gtest.h>

#include <cmath>

#include "../../../data/fixtures/mixture_checks.hpp"

using genfw::Kind;
using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {
std::unique_ptr<genfw::Sampler> edm(std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "edm", options, genfw::testing::context_for({2}, -8, 8));
}
torch::Tensor score_at(const torch::Tensor& x, double sigma) {
  return mixture().score_with_noise(x, torch::full({x.size(0)}, sigma, torch::kFloat64));
}
// 4000 samples: weight s.e. 0.0063, per-mode mean s.e. ≤ 0.035, std s.e. ≤ 0.025.
// Tolerances: weight 0.03, mean 0.14, std 0.1 (~4-5 s.e.). Heun's local error is
// O(h³) per step; the mode weights are decided at σ ≈ 2-10 where the ρ = 7 schedule
// with 18 levels takes steps of ~25% in σ, which keeps the transport error (observed:
// weights within 0.01) below the sampling noise.
const Tolerance kTolerance{0.03, 0.14, 0.1};
}  // namespace

// Deterministic Heun, 18 levels (35 NFE), σ 80 → 0.002 as the paper, started from
// the exact marginal p ∗ N(0, 80²I) (the N(0, 80²I) prior would ignore the mean (3, 3)).
TEST(Edm, HeunRecoversTheMixtureIn35Evaluations) {
  torch::manual_seed(0);
  auto model = exact_score_model();
  auto x_init = mixture().transformed(1.0, 6400.0).sample(4000).to(torch::kFloat32);
  int64_t nfe = 0;
  auto x = draw(*edm({{"sigma_min", 0.002}, {"sigma_max", 80.0}}), *model, 4000, x_init, &nfe);
  EXPECT_EQ(nfe, 35);
  expect_mixture(x, kTolerance, "edm heun 18");
}

// Stochastic churn (S_churn = 40, S_tmin = 0.05, S_tmax = 50, S_noise = 1.003: the
// paper's ImageNet-like settings) samples the same law.
TEST(Edm, ChurnRecoversTheMixture) {
  torch::manual_seed(1);
  auto model = exact_score_model();
  auto x_init = mixture().transformed(1.0, 6400.0).sample(4000).to(torch::kFloat32);
  auto x = draw(*edm({{"steps", int64_t(40)}, {"sigma_min", 0.002}, {"sigma_max", 80.0}, {"S_churn", 40.0},
                      {"S_tmin", 0.05}, {"S_tmax", 50.0}, {"S_noise", 1.003}}),
                *model, 4000, x_init);
  expect_mixture(x, kTolerance, "edm churn 40");
}

// A DDPM ε-model through its VE view (levels σ_t = √((1−ᾱ_t)/ᾱ_t), 0.01 → 157, answered
// at the nearest one: ≤ 0.3% level error mid-range), from the exact marginal at 157.
TEST(Edm, EpsModelThroughTheVeView) {
  torch::manual_seed(2);
  auto model = exact_eps_model();
  const double sigma_max = genfw::ModelDenoiser(*model).levels().sigma_max;
  auto x_init = mixture().transformed(1.0, sigma_max * sigma_max).sample(4000).to(torch::kFloat32);
  auto x = draw(*edm({}), *model, 4000, x_init);
  expect_mixture(x, kTolerance, "edm eps model");
}

// Two levels t = (20, 1, 0), written out from Alg. 2 with the exact score:
//   d = −20·s(x, 20), x_e = x − 19 d, x₁ = x − 19·(d + (−1·s(x_e, 1)))/2   (Heun)
//   x₂ = x₁ + s(x₁, 1)                                                   (Euler to 0)
// and with churn S_churn = 0.5 (γ = 0.25): x̂ = x + √(25² − 20²)·z first, from t̂ = 25.
TEST(Edm, StepsMatchAlgorithm2) {
  torch::manual_seed(3);
  auto model = exact_score_model();
  auto x = 20 * torch::randn({64, 2});
  auto xd = x.to(torch::kFloat64);
  std::vector<genfw::StepRecord> records;
  draw(*edm({{"steps", int64_t(2)}, {"sigma_min", 1.0}, {"sigma_max", 20.0}}), *model, 64, x, nullptr, &records);
  ASSERT_EQ(records.size(), 2u);
  auto d = -20 * score_at(xd, 20);
  auto x_euler = xd - 19 * d;
  auto x1 = xd - 19 * 0.5 * (d - score_at(x_euler, 1));
  auto x2 = x1 + score_at(x1, 1);
  EXPECT_LT((records[0].x.to(torch::kFloat64) - x1).abs().max().item<double>(), 1e-3);
  EXPECT_LT((records[1].x.to(torch::kFloat64) - x2).abs().max().item<double>(), 1e-3);

  records.clear();
  torch::manual_seed(11);
  draw(*edm({{"steps", int64_t(2)}, {"sigma_min", 1.0}, {"sigma_max", 20.0}, {"S_churn", 0.5}}), *model, 64, x,
       nullptr, &records);
  auto x_hat = xd + std::sqrt(25.0 * 25 - 400) * first_noise_after_seed(11, 64, {2}).to(torch::kFloat64);
  auto d_hat = -25 * score_at(x_hat, 25);
  auto x_e = x_hat - 24 * d_hat;
  auto x1_churn = x_hat - 24 * 0.5 * (d_hat - score_at(x_e, 1));
  EXPECT_LT((records[0].x.to(torch::kFloat64) - x1_churn).abs().max().item<double>(), 1e-3);
}

TEST(Edm, ReproducibleWithChurn) {
  auto model = exact_score_model();
  auto sampler = edm({{"steps", int64_t(6)}, {"S_churn", 10.0}});
  torch::manual_seed(4);
  auto a = draw(*sampler, *model, 16);
  torch::manual_seed(4);
  EXPECT_TRUE(torch::equal(a, draw(*sampler, *model, 16)));
}

// clip_denoised clips D(x; σ) to the data range, so the last step (Euler to σ = 0,
// x = D) lands inside it: here the draw's range [−8, 8].
TEST(Edm, ClipDenoisedKeepsSamplesInTheDataRange) {
  torch::manual_seed(5);
  auto model = exact_score_model();
  auto x = draw(*edm({{"steps", int64_t(6)}, {"clip_denoised", true}}), *model, 500, 30 * torch::randn({500, 2}));
  EXPECT_LE(x.max().item<double>(), 8.0);
  EXPECT_GE(x.min().item<double>(), -8.0);
}

TEST(Edm, BadOptionsNameTheKey) {
  expect_option_error("edm", {{"sigma_min", 3.0}, {"sigma_max", 1.0}}, "sigma_min");
  expect_option_error("edm", {{"S_tmin", 3.0}, {"S_tmax", 1.0}}, "S_tmin");
  expect_option_error("edm", {{"steps", int64_t(1)}}, "steps");
}

// Each sample draws its noise from its own stream (SampleContext::noise), so batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(Edm, SamplesDoNotDependOnTheBatchSize) {
  auto model = exact_score_model();
  auto sampler = edm({{"S_churn", 40.0}});  // churn: fresh noise at every step
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, genfw::testing::context_for({2}, -8, 8).data, 5,
                                              "edm with churn"),
            genfw::testing::kBatchSizeTolerance);
}
