// The nll objective trains RealNVP by exact maximum likelihood: on Gaussian data
// the learned NLL approaches the exact entropy, and the recorded bits/dim follows
// the convention of plugins/latent_shared/bits_per_dim.hpp.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

// 2-D Gaussian N(μ, Σ), Σ = A Aᵀ with correlation: the flow's test NLL (20 000 fresh
// samples) must come within 0.05 nats of the entropy ½ log((2πe)^D |Σ|). It cannot be
// meaningfully below it: the cross-entropy of any model is ≥ H, and the standard error
// of the test estimate is ≈ 1/√20000 ≈ 0.007 nats, so the lower bound is H − 0.03.
TEST(Nll, RealNvpReachesGaussianEntropy) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({2});
  auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "realnvp",
                                                  {{"num_couplings", int64_t(4)}, {"hidden", int64_t(32)}}, context);
  auto objective = genfw::testing::make<genfw::Objective>(genfw::Kind::objective, "nll", {}, context);
  auto mu = torch::tensor({1.5, -0.5});
  auto a = torch::tensor({{1.2, 0.0}, {0.9, 0.4}});
  auto draw = [&](int64_t n) { return torch::randn({n, 2}).matmul(a.t()) + mu; };
  auto losses = genfw::testing::fit(*model, *objective, [&] { return genfw::Batch{draw(512), {}}; }, 1500, 3e-3);
  torch::NoGradGuard guard;
  double nll = -genfw::as<genfw::DensityModel>(*model)->log_prob(draw(20000)).mean().item<double>();
  double entropy = 0.5 * (2 * std::log(2 * M_PI * M_E) + std::log(torch::det(a.matmul(a.t())).item<double>()));
  std::cout << "[ realnvp 2-D Gaussian ] test NLL " << nll << " nats, entropy " << entropy << ", gap "
            << nll - entropy << ", train tail loss " << losses["model"] << "\n";
  EXPECT_LT(nll - entropy, 0.05);
  EXPECT_GT(nll - entropy, -0.03);
  // Recorded bits/dim of continuous data = loss / (D ln 2), both averaged over the same steps.
  EXPECT_NEAR(losses["bits_per_dim"], losses["model"] / (2 * std::log(2.0)), 1e-4);
}

// For 8-bit images on [−1, 1] the recorded bits/dim is (loss − D·log(256/2))/(D ln 2)
// (the published convention); checked over a few steps on a tiny image flow.
TEST(Nll, BitsPerDimOfDiscreteImages) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 4, 4});
  context.data.discrete_levels = true;
  auto model = genfw::testing::make<genfw::Model>(
      genfw::Kind::model, "realnvp", {{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}},
      context);
  auto objective = genfw::testing::make<genfw::Objective>(genfw::Kind::objective, "nll", {}, context);
  auto next = [] { return genfw::Batch{torch::randint(0, 256, {32, 1, 4, 4}) / 127.5 - 1.0, {}}; };
  auto losses = genfw::testing::fit(*model, *objective, next, 20);
  const double d = 16;
  EXPECT_NEAR(losses["bits_per_dim"], (losses["model"] + d * std::log(128.0)) / (d * std::log(2.0)), 1e-4);
  // Uniformly random pixels carry 8 bits/dim; a dequantised bound can't beat that by
  // more than noise (an untrained flow is somewhat above it).
  EXPECT_GT(losses["bits_per_dim"], 7.9);
}

}  // namespace
