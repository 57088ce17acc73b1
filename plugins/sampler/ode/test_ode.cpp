// ode against exact scores. For one Gaussian N(μ, s²I) the probability-flow ODE
// has a closed form (it maps the marginals' standardised coordinates onto each
// other): (x(t) − m(t)μ)/√(m(t)²s² + std(t)²) is constant in t. That is the
// independent computation of the sampler's map; the mixture checks the rest.
#include <gtest/gtest.h>

#include <cmath>

#include "../../../data/fixtures/mixture_checks.hpp"

using genfw::Kind;
using genfw::Matrix;
using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {
std::unique_ptr<genfw::Sampler> ode(std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "ode", options, genfw::testing::context_for({2}, -8, 8));
}
// N((1, −2), 0.5² I) with exact VE scores.
std::unique_ptr<genfw::Model> one_gaussian() {
  return genfw::testing::make<genfw::Model>(
      Kind::model, "analytic_gmm",
      {{"means", Matrix{{1.0, -2.0}}}, {"weights", std::vector<double>{1.0}}, {"stds", std::vector<double>{0.5}},
       {"sigma_begin", 20.0}, {"sigma_end", 0.01}, {"num_levels", int64_t(2)}},
      genfw::testing::context_for({2}, -8, 8));
}
// The closed-form flow from t = 1 to t = eps under `sde`.
torch::Tensor exact_flow(const genfw::Sde& sde, const torch::Tensor& x1, double eps) {
  const auto mu = torch::tensor({1.0, -2.0}, torch::kFloat64);
  auto spread = [&](double t) {
    const double m = sde.mean_coefficient(t), noise = sde.marginal_std(t);
    return std::sqrt(m * m * 0.25 + noise * noise);
  };
  return sde.mean_coefficient(eps) * mu +
         (x1.to(torch::kFloat64) - sde.mean_coefficient(1.0) * mu) * (spread(eps) / spread(1.0));
}
double max_error(const torch::Tensor& got, const torch::Tensor& expected) {
  return (got.to(torch::kFloat64) - expected).abs().max().item<double>();
}
}  // namespace

// VE and VP (a score model under VP goes through VE coordinates): the error is the
// solver's. At rtol = atol = 1e-5 (the default) the global error should be ≲ 1e-4·|x|
// (float32 state); we assert 2e-3 (VE: |x| ≤ 80) and 2e-4 (VP: |x| ≤ 4). Loosening the
// tolerances 100× (1e-3) must cost fewer evaluations and give a ≥ 5× larger error (the
// step size follows the error estimate; it is not a fixed grid).
TEST(ProbabilityFlowOde, MatchesTheClosedFormFlowOfAGaussian) {
  torch::manual_seed(0);
  auto model = one_gaussian();
  for (const std::string sde : {"ve", "vp"}) {
    const double scale = sde == "ve" ? 20.0 : 1.0;
    auto x1 = scale * torch::randn({256, 2});
    std::unique_ptr<genfw::Sde> reference;
    if (sde == "ve") reference = std::make_unique<genfw::VeSde>(0.01, 20.0);
    else reference = std::make_unique<genfw::VpSde>(0.1, 20.0);
    auto expected = exact_flow(*reference, x1, 1e-3);
    int64_t nfe_loose = 0, nfe_tight = 0;
    auto loose = draw(*ode({{"sde", sde}, {"rtol", 1e-3}, {"atol", 1e-3}}), *model, 256, x1, &nfe_loose);
    auto tight = draw(*ode({{"sde", sde}}), *model, 256, x1, &nfe_tight);
    const double error_loose = max_error(loose, expected), error_tight = max_error(tight, expected);
    std::printf("[ %s ] max error %.2e at 1e-3 (NFE %lld), %.2e at 1e-5 (NFE %lld)\n", sde.c_str(), error_loose,
                (long long)nfe_loose, error_tight, (long long)nfe_tight);
    EXPECT_LT(error_tight, sde == "ve" ? 2e-3 : 2e-4) << sde;
    EXPECT_GT(nfe_tight, nfe_loose) << sde;
    EXPECT_LT(error_tight, error_loose / 5) << sde;
  }
}

// The DDPM ε-model under its VP SDE, from the prior N(0, I) (p_1's means ±0.033,
// see test_reverse_sde): 4000 samples, tolerances ~4 s.e. (weight s.e. 0.0063, per-mode
// mean s.e. ≤ 0.035, std s.e. ≤ 0.025). The score is evaluated at the rounded
// timestep round(t·999): a time error ≤ 1/1998, i.e. a relative noise-level error
// ≲ 0.1% at the smallest levels, invisible at these tolerances.
TEST(ProbabilityFlowOde, VpRecoversTheMixtureAndCountsNfe) {
  torch::manual_seed(1);
  auto model = exact_eps_model();
  int64_t nfe = 0;
  auto x = draw(*ode({}), *model, 4000, {}, &nfe);
  std::printf("[ ode VP ] NFE %lld at rtol = atol = 1e-5\n", (long long)nfe);
  expect_mixture(x, {0.025, 0.14, 0.1}, "ode VP (eps model)");
  EXPECT_GT(nfe, 20);
  EXPECT_EQ((nfe - 2) % 6, 0);  // 2 for the initial step size, then 6 per attempted step (FSAL)
}

TEST(ProbabilityFlowOde, DeterministicAndReports) {
  auto model = exact_score_model();
  auto sampler = ode({{"record_every", int64_t(1)}});
  torch::manual_seed(2);
  auto x1 = 20 * torch::randn({32, 2});
  std::vector<genfw::StepRecord> records;
  auto a = draw(*sampler, *model, 32, x1, nullptr, &records);
  torch::manual_seed(99);
  EXPECT_TRUE(torch::equal(a, draw(*sampler, *model, 32, x1)));
  ASSERT_GT(records.size(), 3u);
  EXPECT_LT(records.front().noise_level, 1.0);
  EXPECT_NEAR(records.back().noise_level, 1e-3, 1e-12);
}

TEST(ProbabilityFlowOde, BadOptionsNameTheKey) {
  expect_option_error("ode", {{"rtol", 0.0}}, "rtol");
  expect_option_error("ode", {{"sigma_min", 3.0}, {"sigma_max", 1.0}}, "sigma_min");
}

// x(1) comes from each sample's own stream, so every batch size starts sample i at the
// same point; the adaptive step is chosen for the whole batch, so the samples agree to
// the solver's tolerance (rtol = atol = 1e-5 on values of order 1–5; measured 6e-6),
// not to kernel rounding.
TEST(ProbabilityFlowOde, BatchSizeChangesSamplesOnlyWithinTheSolverTolerance) {
  auto model = one_gaussian();
  auto sampler = ode({});
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, genfw::testing::context_for({2}, -8, 8).data, 5,
                                              "ode (adaptive steps)"),
            1e-4);
}
