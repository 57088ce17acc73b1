// reverse_sde against exact scores: analytic_gmm (VE score) and analytic_gmm_eps
// (DDPM ε), so the Euler–Maruyama error is all that is left.
#include <gtest/gtest.h>

#include <cmath>

#include "../../../data/fixtures/mixture_checks.hpp"

using genfw::Kind;
using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {
std::unique_ptr<genfw::Sampler> reverse_sde(std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "reverse_sde", options,
                                              genfw::testing::context_for({2}, -8, 8));
}
// 4000 samples: the weight of (5,5) has s.e. 0.0063, a per-mode mean s.e. ≤ 0.035
// (800 samples in the small mode), a per-mode std s.e. ≤ 0.025. Tolerances ~4 s.e.;
// at N = 500 steps the Euler–Maruyama bias of the std (O(Δt) in the variance,
// Δt·g² relative: ~0.01 here) is below that noise (the euler_maruyama example's test
// measured the same at N = 500 and 2000).
const Tolerance kTolerance{0.025, 0.14, 0.1};
}  // namespace

// VE, exact score: started from the exact marginal p_1 = p ∗ N(0, 20²I) (the prior
// N(0, 20²I) ignores the mixture's mean (3, 3): a property of the prior, not of the
// integrator), 500 steps down to t = eps (σ ≈ 0.01: adds 1e-4 to the variance).
TEST(ReverseSde, VeRecoversTheMixtureFromItsMarginal) {
  torch::manual_seed(0);
  auto model = exact_score_model();
  auto x_init = mixture().transformed(1.0, 400.0).sample(4000).to(torch::kFloat32);
  auto x = draw(*reverse_sde({{"steps", int64_t(500)}}), *model, 4000, x_init);
  expect_mixture(x, kTolerance, "reverse_sde VE");
}

// VP, exact ε of the DDPM (β 1e-4 → 0.02, T = 1000 ⇒ β_min = 0.1, β_max = 20), from
// the prior N(0, I): p_1 has means ±5·m(1) = ±0.033 and variance 1 ± 1e-3, so the
// prior's own error is far below the tolerances.
TEST(ReverseSde, VpRecoversTheMixtureFromThePrior) {
  torch::manual_seed(1);
  auto model = exact_eps_model();
  auto x = draw(*reverse_sde({{"steps", int64_t(500)}}), *model, 4000);
  expect_mixture(x, kTolerance, "reverse_sde VP (eps model)");
}

// sub-VP through the VE-coordinates route of SdeScore (a score model under a VP-type
// SDE: ∇log p_t(x) = s̃(x/m, s/m)/m), from the prior N(0, I) (p_1: means ±0.033,
// variance 1 − (1 − m²)²·… ≈ 1, same argument as above).
TEST(ReverseSde, SubVpRecoversTheMixtureThroughVeCoordinates) {
  torch::manual_seed(2);
  auto model = exact_score_model();
  auto x = draw(*reverse_sde({{"steps", int64_t(500)}, {"sde", std::string("subvp")}}), *model, 4000);
  expect_mixture(x, kTolerance, "reverse_sde sub-VP (score model)");
}

// One step (N = 1, t = 1 → eps, denoise: the mean, no noise) against the update
// written out here from the definitions and the exact scores:
//   VE: x' = x + g(1)²·Δt·s(x, σ_max),  g(1)² = 2σ_max² log(σ_max/σ_min)
//   VP: x' = x − (−½β_max·x − β_max·s)·Δt,  s = score_vp(x, m(1)²)
TEST(ReverseSde, OneStepMatchesTheEulerMaruyamaUpdate) {
  torch::manual_seed(3);
  auto x = (10 * torch::randn({64, 2})).to(torch::kFloat32);
  const double dt = 1.0 - 1e-3;
  {
    auto model = exact_score_model();
    int64_t nfe = 0;
    auto got = draw(*reverse_sde({{"steps", int64_t(1)}}), *model, 64, x, &nfe);
    const double g2 = 2 * 400.0 * std::log(20.0 / 0.01);
    auto s = mixture().score_with_noise(x.to(torch::kFloat64), torch::full({64}, 20.0, torch::kFloat64));
    auto expected = x.to(torch::kFloat64) + g2 * dt * s;
    EXPECT_LT((got.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-3 * expected.abs().max().item<double>());
    EXPECT_EQ(nfe, 1);
  }
  {
    auto model = exact_eps_model();
    // The ε-model between its timesteps (interpolated time) answers at the SDE's own
    // t = 1: ᾱ = m(1)² = 4.3e-5. (Until the denoiser it answered at timestep 999 with its
    // discrete ᾱ_999 = 4.04e-5; the nearest timestep now gives 999 at the requested σ,
    // 1e-3 relative off this expectation.)
    auto got = draw(*reverse_sde({{"steps", int64_t(1)}, {"discrete_time", std::string("interpolated")}}), *model,
                    64, x);
    const double alpha_bar = std::pow(genfw::VpSde(0.1, 20.0).mean_coefficient(1.0), 2);
    auto s = mixture().score_vp(x.to(torch::kFloat64), torch::full({64}, alpha_bar, torch::kFloat64));
    auto xd = x.to(torch::kFloat64);
    auto expected = xd - (-0.5 * 20.0 * xd - 20.0 * s) * dt;
    EXPECT_LT((got.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-4 * expected.abs().max().item<double>());
  }
}

TEST(ReverseSde, ReproducibleCountsNfeAndReports) {
  auto model = exact_eps_model();
  auto sampler = reverse_sde({{"steps", int64_t(20)}, {"record_every", int64_t(5)}});
  int64_t nfe = 0;
  std::vector<genfw::StepRecord> records;
  torch::manual_seed(4);
  auto a = draw(*sampler, *model, 16, {}, &nfe, &records);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{16, 2}));
  EXPECT_EQ(nfe, 20);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_DOUBLE_EQ(records[0].noise_level, 1.0);
  EXPECT_EQ(records[1].index, 5);
  torch::manual_seed(4);
  EXPECT_TRUE(torch::equal(a, draw(*sampler, *model, 16)));
}

TEST(ReverseSde, BadOptionsNameTheKey) {
  expect_option_error("reverse_sde", {{"sigma_min", 2.0}, {"sigma_max", 1.0}}, "sigma_min");
  expect_option_error("reverse_sde", {{"beta_min", 30.0}, {"beta_max", 20.0}}, "beta_min");
  expect_option_error("reverse_sde", {{"sde", std::string("vpp")}}, "sde");
}

// Each sample draws its noise from its own stream (SampleContext::noise), so batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(ReverseSde, SamplesDoNotDependOnTheBatchSize) {
  auto model = exact_eps_model();
  auto sampler = reverse_sde({{"sde", std::string("vp")}, {"steps", int64_t(200)}});
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, genfw::testing::context_for({2}, -8, 8).data, 5,
                                              "reverse_sde vp"),
            genfw::testing::kBatchSizeTolerance);
}
