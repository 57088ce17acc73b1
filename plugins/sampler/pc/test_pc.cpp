// pc against exact scores (analytic_gmm: VE score; analytic_gmm_eps: DDPM ε).
#include <gtest/gtest.h>

#include <cmath>

#include "../../../data/fixtures/mixture_checks.hpp"

using genfw::Kind;
using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {
std::unique_ptr<genfw::Sampler> pc(std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "pc", options, genfw::testing::context_for({2}, -8, 8));
}
// 4000 samples: weight s.e. 0.0063, per-mode mean s.e. ≤ 0.035, std s.e. ≤ 0.025;
// tolerances ~4 s.e. The Langevin corrector at r = 0.16 in 2-D takes steps
// ε ≈ 2r²σ² ≈ 0.05σ² at level σ, inflating the variance by ~ε/(4σ²) ≈ 1.3%
// (std +0.6%), and the predictor's O(Δt) bias at N = 500 is of the same order: both
// well inside the std tolerance 0.1.
const Tolerance kTolerance{0.025, 0.14, 0.1};
}  // namespace

// VE (Alg. 2): reverse diffusion + Langevin, from the exact marginal p_1 = p ∗ N(0, 20²I)
// (see test_reverse_sde: the prior N(0, 20²I) ignores the mixture's mean).
TEST(PredictorCorrector, VeRecoversTheMixture) {
  torch::manual_seed(0);
  auto model = exact_score_model();
  auto x_init = mixture().transformed(1.0, 400.0).sample(4000).to(torch::kFloat32);
  int64_t nfe = 0;
  auto x = draw(*pc({{"steps", int64_t(500)}}), *model, 4000, x_init, &nfe);
  EXPECT_EQ(nfe, 1000);  // N·(1 + M)
  expect_mixture(x, kTolerance, "pc VE reverse_diffusion+langevin");
}

// VP (Alg. 3) on the DDPM ε-model from the prior N(0, I), Euler–Maruyama predictor.
TEST(PredictorCorrector, VpRecoversTheMixture) {
  torch::manual_seed(1);
  auto model = exact_eps_model();
  auto x = draw(*pc({{"steps", int64_t(500)}, {"predictor", std::string("euler_maruyama")}}), *model, 4000);
  expect_mixture(x, kTolerance, "pc VP euler_maruyama+langevin");
}

// One PC step (N = 1, M = 1, denoise) against Alg. 4 + eq. 46 written out here with the
// exact VE score; the corrector's noise z is the first draw after seeding, reproduced.
//   corrector: ε = 2(r·mean‖z‖/mean‖s(x,σ_max)‖)², x₁ = x + ε s + √(2ε) z
//   predictor: x' = x₁ + (σ_max² − σ(eps)²)·s(x₁, σ_max)
TEST(PredictorCorrector, OneStepMatchesAlgorithm4AndReverseDiffusion) {
  torch::manual_seed(2);
  auto model = exact_score_model();
  auto x = 10 * torch::randn({64, 2});
  torch::manual_seed(7);
  auto got = draw(*pc({{"steps", int64_t(1)}}), *model, 64, x);
  auto z = first_noise_after_seed(7, 64, {2}).to(torch::kFloat64);
  auto xd = x.to(torch::kFloat64);
  auto sigma_max = torch::full({64}, 20.0, torch::kFloat64);
  auto s = mixture().score_with_noise(xd, sigma_max);
  const double ratio = 0.16 * z.norm(2, 1).mean().item<double>() / s.norm(2, 1).mean().item<double>();
  const double step = 2 * ratio * ratio;
  auto x1 = xd + step * s + std::sqrt(2 * step) * z;
  const double sigma_end = 0.01 * std::pow(2000.0, 1e-3);
  auto expected = x1 + (400.0 - sigma_end * sigma_end) * mixture().score_with_noise(x1, sigma_max);
  EXPECT_LT((got.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-3 * expected.abs().max().item<double>());
}

// The VP reverse-diffusion predictor alone is DDPM's ancestral chain in the
// discrete-DDPM limit: x' = (2 − √(1−β))·x + β·s with 1 − β = m(t)²/m(t−Δt)², s the
// score at the SDE's own t (ᾱ = m(t)²): what the ε-model gives between its timesteps
// with interpolated time. (Until the denoiser, the ε-model was asked at timestep
// round(t·999) with its discrete ᾱ_999 = 4.04e-5 instead of m(1)² = 4.3e-5.)
TEST(PredictorCorrector, VpReverseDiffusionIsTheDiscreteChain) {
  torch::manual_seed(3);
  auto model = exact_eps_model();
  auto x = torch::randn({64, 2});
  std::vector<genfw::StepRecord> records;
  draw(*pc({{"steps", int64_t(4)}, {"corrector", std::string("none")}, {"record_every", int64_t(1)},
            {"discrete_time", std::string("interpolated")}}),
       *model, 64, x, nullptr, &records);
  ASSERT_EQ(records.size(), 4u);
  genfw::VpSde vp(0.1, 20.0);
  const double dt = (1 - 1e-3) / 4, t = 1.0;
  const double one_minus_beta = std::pow(vp.mean_coefficient(t) / vp.mean_coefficient(t - dt), 2);
  const double alpha_bar = std::pow(vp.mean_coefficient(t), 2);
  auto xd = x.to(torch::kFloat64);
  auto s = mixture().score_vp(xd, torch::full({64}, alpha_bar, torch::kFloat64));
  auto expected = (2 - std::sqrt(one_minus_beta)) * xd + (1 - one_minus_beta) * s;
  EXPECT_LT((records[0].x0_pred.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-4);
}

TEST(PredictorCorrector, CountsNfeAndIsReproducible) {
  auto model = exact_eps_model();
  auto sampler = pc({{"steps", int64_t(10)}, {"n_corrector", int64_t(2)}});
  int64_t nfe = 0;
  torch::manual_seed(4);
  auto a = draw(*sampler, *model, 16, {}, &nfe);
  EXPECT_EQ(nfe, 30);
  torch::manual_seed(4);
  EXPECT_TRUE(torch::equal(a, draw(*sampler, *model, 16)));
  auto corrector_only = pc({{"steps", int64_t(10)}, {"predictor", std::string("none")}});
  draw(*corrector_only, *model, 16, {}, &nfe);
  EXPECT_EQ(nfe, 10);
}

TEST(PredictorCorrector, BadOptionsNameTheKey) {
  expect_option_error("pc", {{"snr", 0.0}}, "snr");
  expect_option_error("pc", {{"predictor", std::string("none")}, {"n_corrector", int64_t(0)}}, "predictor");
  expect_option_error("pc", {{"sigma_min", 3.0}, {"sigma_max", 1.0}}, "sigma_min");
}

// Each sample draws its noise from its own stream (SampleContext::noise): without the
// corrector (whose step size averages norms over the batch, as score_sde), batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(PredictorCorrector, PredictorAloneDoesNotDependOnTheBatchSize) {
  auto model = exact_eps_model();
  auto sampler = genfw::testing::make<genfw::Sampler>(Kind::sampler, "pc",
                                                      {{"corrector", std::string("none")}, {"steps", int64_t(200)}},
                                                      genfw::testing::context_for({2}, -8, 8));
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, genfw::testing::context_for({2}, -8, 8).data, 5,
                                              "pc without corrector"),
            genfw::testing::kBatchSizeTolerance);
}
