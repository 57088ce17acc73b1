// The SDK's SDEs (genfw/sde.hpp) against their definitions: closed-form marginals
// checked through the moment equations and by simulating the forward SDE, prior
// densities, the DDPM correspondence, and the
// Dormand–Prince solver on ODEs with known solutions.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/gaussian_mixture.hpp"
#include "genfw/sde.hpp"
#include "genfw/testing.hpp"

namespace {

const genfw::VeSde kVe(0.01, 50.0);
const genfw::VpSde kVp(0.1, 20.0);
const genfw::SubVpSde kSubVp(0.1, 20.0);
const genfw::Sde* const kAll[] = {&kVe, &kVp, &kSubVp};

// Central difference of a scalar function of t.
template <typename F>
double derivative(F f, double t, double h = 1e-6) {
  return (f(t + h) - f(t - h)) / (2 * h);
}

}  // namespace

// VE and VP drift/diffusion written from their definitions (Song et al. 2021, eq. 9, 11, 12).
TEST(Sde, DriftAndDiffusionFollowTheDefinitions) {
  for (double t : {0.0, 0.3, 0.77, 1.0}) {
    const double sigma = 0.01 * std::pow(5000.0, t);
    EXPECT_NEAR(kVe.marginal_std(t), sigma, 1e-12 * sigma);
    // VE: g² = d σ²/dt.
    EXPECT_NEAR(std::pow(kVe.diffusion(t), 2), derivative([](double u) { return std::pow(kVe.sigma(u), 2); }, t),
                1e-6 * std::pow(kVe.diffusion(t), 2));
    EXPECT_EQ(kVe.drift_coefficient(t), 0.0);
    // VP: β(t) = 0.1 + 19.9 t, f = −½β x, g = √β.
    const double beta = 0.1 + 19.9 * t;
    EXPECT_NEAR(kVp.drift_coefficient(t), -0.5 * beta, 1e-12);
    EXPECT_NEAR(kVp.diffusion(t), std::sqrt(beta), 1e-12);
    // sub-VP: g² = β(1 − e^{−2∫β}), ∫₀ᵗβ = 0.1t + 9.95t².
    EXPECT_NEAR(std::pow(kSubVp.diffusion(t), 2), beta * (1 - std::exp(-2 * (0.1 * t + 9.95 * t * t))), 1e-12);
    auto x = torch::randn({4, 3}, torch::kFloat64);
    EXPECT_TRUE(torch::allclose(kVp.drift(x, t), -0.5 * beta * x));
  }
}

// The marginals solve the moment equations of a linear SDE (Särkkä & Solin 2019, eq. 6.2):
// dm/dt = a(t)·m and d(s²)/dt = 2a(t)·s² + g(t)², with m(0) = 1 (s(0) = 0 for VP/sub-VP).
TEST(Sde, MarginalsSolveTheMomentEquations) {
  for (const genfw::Sde* sde : kAll) {
    for (double t : {0.05, 0.3, 0.6, 0.95}) {
      const double m = sde->mean_coefficient(t), v = std::pow(sde->marginal_std(t), 2);
      const double a = sde->drift_coefficient(t), g2 = std::pow(sde->diffusion(t), 2);
      EXPECT_NEAR(derivative([&](double u) { return sde->mean_coefficient(u); }, t), a * m, 1e-6 * (1 + std::abs(a)))
          << sde->name() << " t=" << t;
      const double dv = derivative([&](double u) { return std::pow(sde->marginal_std(u), 2); }, t);
      EXPECT_NEAR(dv, 2 * a * v + g2, 1e-5 * (1 + g2)) << sde->name() << " t=" << t;
    }
  }
  EXPECT_DOUBLE_EQ(kVp.mean_coefficient(0), 1.0);
  EXPECT_DOUBLE_EQ(kVp.marginal_std(0), 0.0);
  // Closed form at t = 1: log m = −¼·19.9 − ½·0.1.
  EXPECT_NEAR(std::log(kVp.mean_coefficient(1)), -0.25 * 19.9 - 0.05, 1e-12);
  EXPECT_NEAR(kSubVp.marginal_std(1), 1 - std::exp(2 * (-0.25 * 19.9 - 0.05)), 1e-12);
}

// Simulating the forward SDE itself (Euler–Maruyama, 1000 steps, 10000 paths from
// x(0) = 2) gives the closed-form marginal at t = 0.5: mean m·2 and std s. Errors:
// s.e. of the mean s/√10000 = 0.01·s, of the std ≈ 0.007·s; Euler's bias in the
// variance is O(β·Δt) ≤ 10·5e-4 = 0.5%. Tolerances 0.03·(s + m) for the mean, 0.03·s
// for the std (≥ 4 s.e.).
TEST(Sde, SimulatedForwardSdeMatchesTheMarginal) {
  torch::manual_seed(0);
  for (const genfw::Sde* sde : kAll) {
    auto x = torch::full({10000}, 2.0, torch::kFloat64);
    const int steps = 1000;
    const double dt = 0.5 / steps;
    for (int i = 0; i < steps; ++i) {
      const double t = i * dt;
      x = x + sde->drift(x, t) * dt + sde->diffusion(t) * std::sqrt(dt) * torch::randn_like(x);
    }
    const double m = sde->mean_coefficient(0.5), s = std::sqrt(std::pow(sde->marginal_std(0.5), 2) -
                                                               std::pow(sde->marginal_std(0.0), 2));
    // (VE's s(0) = σ_min ≠ 0: the simulation adds only the variance accrued since t = 0.)
    EXPECT_NEAR(x.mean().item<double>(), 2 * m, 0.03 * (s + m)) << sde->name();
    EXPECT_NEAR(x.std().item<double>(), s, 0.03 * s) << sde->name();
  }
}

// Prior log-densities against N(0, I) (VP, sub-VP) and N(0, σ_max² I) (VE) by hand,
// on image-shaped input (every non-batch dimension summed).
TEST(Sde, PriorLogDensity) {
  torch::manual_seed(1);
  auto x = torch::randn({5, 3, 2, 2}, torch::kFloat64);
  const double d = 12;
  auto squared = x.pow(2).reshape({5, -1}).sum(1);
  auto vp_expected = -0.5 * d * std::log(2 * M_PI) - 0.5 * squared;
  EXPECT_LT((kVp.prior_log_prob(x) - vp_expected).abs().max().item<double>(), 1e-12);
  EXPECT_LT((kSubVp.prior_log_prob(x) - vp_expected).abs().max().item<double>(), 1e-12);
  auto ve_expected = -0.5 * d * std::log(2 * M_PI * 2500.0) - squared / 5000.0;
  EXPECT_LT((kVe.prior_log_prob(x) - ve_expected).abs().max().item<double>(), 1e-12);
  genfw::SampleNoise noise(/*seed=*/0, /*first=*/0, /*count=*/20000);
  auto sample = kVe.prior_sample(noise, {2}, torch::TensorOptions().dtype(torch::kFloat32));
  EXPECT_NEAR(sample.std().item<double>(), 50.0, 1.0);  // s.e. 0.25
}

// DDPM's linear schedule (T = 1000, β 1e-4 → 0.02) is the VP SDE with β_min = 0.1,
// β_max = 20 (score_sde); its discretisation multiplies out to the marginal, and a
// cosine schedule has no such VP SDE (refused with a sentence).
TEST(Sde, VpIsTheContinuousLimitOfTheDdpmSchedule) {
  auto schedule = genfw::DiffusionSchedule::from_betas(genfw::beta_schedule("linear", 1000, 1e-4, 0.02));
  auto vp = genfw::VpSde::for_schedule(schedule);
  EXPECT_NEAR(vp.beta_min(), 0.1, 1e-12);
  EXPECT_NEAR(vp.beta_max(), 20.0, 1e-9);
  EXPECT_EQ(vp.discrete_steps(), 1000);
  // ᾱ_t of the DDPM at timestep k vs m(k/999)²: the two time conventions differ by
  // O(1/T) in t; the VP marginal at t = (k + 1)/1000 matches ᾱ_k to < 2% in log.
  for (int64_t k : {100, 500, 999}) {
    const double discrete = std::log(schedule.alphas_cumprod[k].item<double>());
    const double continuous = 2 * std::log(vp.mean_coefficient(double(k + 1) / 1000.0));
    EXPECT_NEAR(discrete / continuous, 1.0, 0.02) << k;
  }
  double product = 1;
  const int steps = 37;
  const double dt = (1 - 1e-3) / steps;
  for (int i = 0; i < steps; ++i) {
    const auto step = vp.discretize(1 - i * dt, dt);
    product *= std::pow(1 + step.drift_coefficient, 2);  // 1 − β_i
    EXPECT_NEAR(std::pow(step.noise_std, 2), 1 - std::pow(1 + step.drift_coefficient, 2), 1e-12);
  }
  EXPECT_NEAR(product, std::pow(vp.mean_coefficient(1) / vp.mean_coefficient(1e-3), 2), 1e-12);
  auto cosine = genfw::DiffusionSchedule::from_betas(genfw::beta_schedule("squaredcos_cap_v2", 1000, 0, 0));
  EXPECT_THROW(genfw::VpSde::for_schedule(cosine), genfw::Error);
  // VE's discrete chain: G_i² = σ(t)² − σ(t − Δt)².
  auto ve_step = kVe.discretize(0.5, 0.1);
  EXPECT_NEAR(std::pow(ve_step.noise_std, 2), std::pow(kVe.sigma(0.5), 2) - std::pow(kVe.sigma(0.4), 2), 1e-9);
}

// Dormand–Prince on dy/dt = cos(t)·y (y = y0·e^{sin t}), forwards and backwards, and on
// a stiff-ish linear decay: errors within a small multiple of the tolerance (the
// local-error control bounds the global error only loosely: 10·tol allowed).
TEST(Sde, DormandPrinceSolvesKnownOdes) {
  auto y0 = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  auto rhs = [](const torch::Tensor& y, double t) { return std::cos(t) * y; };
  for (double tol : {1e-4, 1e-8}) {
    auto forward = genfw::solve_dopri5(rhs, y0, 0.0, 3.0, tol, tol);
    auto exact = y0 * std::exp(std::sin(3.0));
    EXPECT_LT((forward.y - exact).abs().max().item<double>(), 10 * tol * 3) << tol;
    EXPECT_EQ(forward.evaluations, 2 + 6 * (forward.accepted + forward.rejected));
    auto backward = genfw::solve_dopri5(rhs, exact, 3.0, 0.0, tol, tol);
    EXPECT_LT((backward.y - y0).abs().max().item<double>(), 10 * tol * 3) << tol;
  }
  auto coarse = genfw::solve_dopri5(rhs, y0, 0.0, 3.0, 1e-3, 1e-3);
  auto fine = genfw::solve_dopri5(rhs, y0, 0.0, 3.0, 1e-9, 1e-9);
  EXPECT_GT(fine.accepted, 3 * coarse.accepted);
  auto decay = genfw::solve_dopri5([](const torch::Tensor& y, double) { return -50 * y; }, y0, 0.0, 1.0, 1e-6, 1e-9);
  EXPECT_LT((decay.y - y0 * std::exp(-50.0)).abs().max().item<double>(), 1e-7);
  EXPECT_THROW(genfw::solve_dopri5(rhs, y0, 0.0, 1.0, 0.0, 1e-6), genfw::Error);
}
