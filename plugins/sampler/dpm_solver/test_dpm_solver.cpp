// dpm_solver (DPM-Solver++(2M), Lu et al. 2022 Alg. 2) against the exact ε of a mixture.
#include <gtest/gtest.h>

#include <cmath>

#include "../../sde_shared/mixture_checks.hpp"

using genfw::Kind;
using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {
std::unique_ptr<genfw::Sampler> dpm(std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "dpm_solver", options,
                                              genfw::testing::context_for({2}, -8, 8));
}
}  // namespace

// 20 steps (20 NFE) from x_T ~ N(0, I), every step placement. 4000 samples: weight
// s.e. 0.0063, per-mode mean s.e. ≤ 0.035, std s.e. ≤ 0.025; tolerances weight 0.03,
// mean 0.14, std 0.1 (~4 s.e.). The 2M solver's global error is O(h²) in λ: with
// 20 steps over λ ∈ [−5, 4.6] (h ≈ 0.5), observed mode statistics agree with 1000-step
// DDIM within the noise. The last iterate is x at t = 0, noise std √(1−ᾱ_0) = 0.01:
// +1e-4 of variance, negligible.
TEST(DpmSolver, RecoversTheMixtureIn20Evaluations) {
  auto model = exact_eps_model();
  for (const std::string skip : {"logSNR", "time_uniform", "time_quadratic"}) {
    torch::manual_seed(0);
    int64_t nfe = 0;
    auto x = draw(*dpm({{"skip_type", skip}}), *model, 4000, {}, &nfe);
    EXPECT_EQ(nfe, 20) << skip;
    expect_mixture(x, {0.03, 0.14, 0.1}, "dpm_solver++ 2M 20 steps " + skip);
  }
}

// Three time-uniform steps: t = 1, 0.667, 0.334, 0.001 → timesteps 999, 666, 333, 0.
// Each update written out from Alg. 2 with the exact ε = −√(1−ᾱ)·∇log p_t:
//   step 1 (first order): x₁ = (σ₁/σ₀) x₀ − α₁(e^{−h₁} − 1) x_θ⁰
//   steps 2, 3 (2M):      D = (1 + 1/(2r)) x_θ^{i−1} − 1/(2r) x_θ^{i−2},  r = h_{i−1}/h_i
TEST(DpmSolver, StepsMatchAlgorithm2) {
  torch::manual_seed(1);
  auto model = exact_eps_model();
  auto* net = genfw::as<genfw::NoisePredictor>(*model);
  auto x = torch::randn({64, 2});
  std::vector<genfw::StepRecord> records;
  draw(*dpm({{"steps", int64_t(3)}, {"skip_type", std::string("time_uniform")}, {"lower_order_final", false}}),
       *model, 64, x, nullptr, &records);
  ASSERT_EQ(records.size(), 3u);
  const std::vector<int64_t> t{999, 666, 333, 0};
  auto alpha_bar = [&](int64_t k) { return net->schedule().alphas_cumprod[k].item<double>(); };
  auto lambda = [&](int64_t k) { return 0.5 * std::log(alpha_bar(k) / (1 - alpha_bar(k))); };
  auto data_prediction = [&](const torch::Tensor& y, int64_t k) {
    const double a = alpha_bar(k);
    auto eps = -std::sqrt(1 - a) * mixture().score_vp(y, torch::full({y.size(0)}, a, torch::kFloat64));
    return (y - std::sqrt(1 - a) * eps) / std::sqrt(a);
  };
  auto y = x.to(torch::kFloat64);
  torch::Tensor previous;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(records[i - 1].noise_level, double(t[i - 1]));
    auto x0 = data_prediction(y, t[i - 1]);
    const double h = lambda(t[i]) - lambda(t[i - 1]);
    auto d = x0;
    if (i > 1) {
      const double r = (lambda(t[i - 1]) - lambda(t[i - 2])) / h;
      d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous;
    }
    y = std::sqrt((1 - alpha_bar(t[i])) / (1 - alpha_bar(t[i - 1]))) * y -
        std::sqrt(alpha_bar(t[i])) * (std::exp(-h) - 1) * d;
    previous = x0;
    EXPECT_LT((records[i - 1].x.to(torch::kFloat64) - y).abs().max().item<double>(), 1e-4) << "step " << i;
  }
}

// Second order: on one Gaussian N(0.5, 1) (exact flow known: DDIM's map at 1000 steps is
// the reference), doubling the steps 5 → 10 must cut the 2M error ~4× (we require 3×),
// where a first-order solver (DDIM) only halves it.
TEST(DpmSolver, ConvergesAtSecondOrder) {
  torch::manual_seed(2);
  auto model = exact_eps_model({{"means", genfw::Matrix{{0.5, 0.5}}},
                                {"weights", std::vector<double>{1.0}},
                                {"stds", std::vector<double>{1.0}}});
  auto x = torch::randn({256, 2});
  // Exact map of the diffusion ODE for N(μ, I) data: x(t) = α_t μ + (x_T − α_T μ)·1 (unit variance is
  // preserved by the VP marginals of unit-variance data), so x(0) = α_0 μ + (x − α_T μ).
  auto* net = genfw::as<genfw::NoisePredictor>(*model);
  const double a0 = std::sqrt(net->schedule().alphas_cumprod[0].item<double>());
  const double aT = std::sqrt(net->schedule().alphas_cumprod[999].item<double>());
  auto expected = x.to(torch::kFloat64) + (a0 - aT) * 0.5;
  auto error = [&](int64_t steps) {
    auto got = draw(*dpm({{"steps", steps}, {"lower_order_final", false}}), *model, 256, x);
    return (got.to(torch::kFloat64) - expected).abs().max().item<double>();
  };
  const double e5 = error(5), e10 = error(10);
  std::printf("[ order ] max error 5 steps %.2e, 10 steps %.2e (ratio %.1f)\n", e5, e10, e5 / e10);
  EXPECT_GT(e5 / e10, 3.0);
}

// Any prediction type is read through eps_from_prediction: a v-prediction model of the
// same mixture gives the same samples (float rounding only).
TEST(DpmSolver, PredictionTypesAgree) {
  auto eps_model = exact_eps_model();
  auto v_model = exact_eps_model({{"prediction_type", std::string("v_prediction")}});
  auto x = torch::randn({128, 2});
  auto a = draw(*dpm({{"steps", int64_t(10)}}), *eps_model, 128, x);
  auto b = draw(*dpm({{"steps", int64_t(10)}}), *v_model, 128, x);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-3);
}

TEST(DpmSolver, RefusesCollidingSteps) {
  auto model = exact_eps_model();
  auto sampler = dpm({{"steps", int64_t(900)}, {"skip_type", std::string("time_quadratic")}});
  try {
    draw(*sampler, *model, 4);
    FAIL() << "expected a genfw::Error";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'skip_type'"), std::string::npos) << e.what();
  }
  expect_option_error("dpm_solver", {{"steps", int64_t(0)}}, "steps");
}
