// VAE through the plugin boundary: shapes of every variant, the likelihoods
// against independent formulas, and the IWAE helper (plugins/latent_shared/iwae.hpp)
// on a trained model: L_1 (the ELBO) ≤ L_10 ≤ L_100.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

std::unique_ptr<genfw::Model> make_vae(const genfw::BuildContext& context,
                                       std::map<std::string, OptionValue> overrides = {}) {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "vae", overrides, context);
}

TEST(Vae, ShapesOfEveryVariant) {
  torch::manual_seed(0);
  for (std::string likelihood : {"bernoulli", "gaussian", "gaussian_learned", "discretized_logistic"}) {
    for (std::vector<int64_t> shape : {std::vector<int64_t>{1, 28, 28}, {3, 32, 32}, {5}}) {
      auto context = genfw::testing::context_for(shape);
      context.data.discrete_levels = true;
      auto model = make_vae(context, {{"likelihood", likelihood}, {"latent_dim", int64_t(3)}, {"hidden", int64_t(32)},
                                      {"channels", int64_t(8)}});
      auto* vae = genfw::as<genfw::LatentVariableModel>(*model);
      ASSERT_NE(vae, nullptr);
      std::vector<int64_t> full{4};
      full.insert(full.end(), shape.begin(), shape.end());
      auto x = torch::rand(full) * 2 - 1;
      auto q = vae->encode(x);
      EXPECT_EQ(q.mean.sizes(), (std::vector<int64_t>{4, 3}));
      EXPECT_EQ(q.log_var.sizes(), (std::vector<int64_t>{4, 3}));
      auto ll = vae->decoder_log_likelihood(x, q.mean);
      EXPECT_EQ(ll.sizes(), (std::vector<int64_t>{4}));
      EXPECT_TRUE(torch::isfinite(ll).all().item<bool>());
      EXPECT_EQ(vae->decode(q.mean, true).sizes(), x.sizes());
      EXPECT_EQ(vae->decode(q.mean, false).sizes(), x.sizes());
      EXPECT_EQ(vae->latent_dim(), 3);
    }
  }
}

// Fixed Gaussian and Bernoulli likelihoods equal their closed forms computed from the
// decoder mean (tolerance 1e-3 nats on sums of 784 float32 terms).
TEST(Vae, LikelihoodsMatchClosedForms) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 28, 28});
  auto x = torch::rand({3, 1, 28, 28}) * 2 - 1;
  auto z = torch::randn({3, 16});
  {
    auto model = make_vae(context, {{"likelihood", std::string("gaussian")}, {"fixed_std", 0.3}});
    auto* vae = genfw::as<genfw::LatentVariableModel>(*model);
    auto mean = vae->decode(z, true);
    auto expected = (-0.5 * ((x - mean) / 0.3).pow(2) - std::log(0.3) - 0.5 * std::log(2 * M_PI)).flatten(1).sum(1);
    EXPECT_LT((vae->decoder_log_likelihood(x, z) - expected).abs().max().item<double>(), 1e-3);
  }
  {
    auto model = make_vae(context, {{"likelihood", std::string("bernoulli")}});
    auto* vae = genfw::as<genfw::LatentVariableModel>(*model);
    auto p = (vae->decode(z, true) + 1) / 2;  // data [−1, 1] → probabilities
    auto t = (x + 1) / 2;
    auto expected = (t * torch::log(p) + (1 - t) * torch::log(1 - p)).flatten(1).sum(1);
    EXPECT_LT((vae->decoder_log_likelihood(x, z) - expected).abs().max().item<double>(), 1e-3);
    // Random decoding gives only the two ends of the range.
    auto sample = vae->decode(z, false);
    EXPECT_EQ(((sample == -1) | (sample == 1)).all().item<bool>(), true);
  }
}

// The discretized logistic is a probability mass over the L levels: with the
// data-space density convention (mass / w^D, w = range/L), Σ_k exp(log p + D·log w) = 1
// over all levels of a 1-D variable (tolerance 1e-4).
TEST(Vae, DiscretizedLogisticSumsToOne) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1}, -1.0, 1.0);
  context.data.discrete_levels = true;
  context.data.levels = 16;
  auto model = make_vae(context, {{"likelihood", std::string("discretized_logistic")}, {"latent_dim", int64_t(2)}});
  auto* vae = genfw::as<genfw::LatentVariableModel>(*model);
  for (int trial = 0; trial < 4; ++trial) {
    auto z = torch::randn({1, 2}).expand({16, 2}) * 2;
    auto x = (torch::arange(16, torch::kFloat32) / 15.0 * 2 - 1).view({16, 1});
    auto log_density = vae->decoder_log_likelihood(x, z);
    double mass = torch::exp(log_density + std::log(2.0 / 16)).sum().item<double>();
    EXPECT_NEAR(mass, 1.0, 1e-4);
    EXPECT_NEAR(genfw::bits_per_dim(std::log(1.0 / 16) - std::log(2.0 / 16), context.data), 4.0, 1e-9);
  }
}

// On a trained VAE (2-D mixture of four Gaussians, 1500 ELBO steps) the IWAE bound
// is monotone in k: mean L_1 < L_10 < L_100 over 4000 test points. The expected
// increments are ≥ 0 by theory; observed ≈ 0.1 and ≈ 0.03 nats, and the standard
// errors of the means are ≈ 0.004, so each step must rise by more than 0.005 and
// L_1 must agree with a direct ELBO estimate (rec − KL) within 0.02.
TEST(Vae, IwaeBoundTightensWithK) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({2});
  auto model = make_vae(context, {{"latent_dim", int64_t(2)}, {"hidden", int64_t(64)}});
  auto objective = genfw::testing::make<genfw::Objective>(genfw::Kind::objective, "elbo", {}, context);
  auto centres = torch::tensor({{2.0, 0.0}, {-2.0, 0.0}, {0.0, 2.0}, {0.0, -2.0}});
  auto draw = [&](int64_t n) { return centres.index_select(0, torch::randint(0, 4, {n})) + 0.3 * torch::randn({n, 2}); };
  genfw::testing::fit(*model, *objective, [&] { return genfw::Batch{draw(256), {}}; }, 1500, 2e-3);
  torch::NoGradGuard guard;
  auto* vae = genfw::as<genfw::LatentVariableModel>(*model);
  auto x = draw(4000);
  double l1 = genfw::iwae_log_likelihood(*vae, x, 1).mean().item<double>();
  double l10 = genfw::iwae_log_likelihood(*vae, x, 10).mean().item<double>();
  double l100 = genfw::iwae_log_likelihood(*vae, x, 100).mean().item<double>();
  auto q = vae->encode(x);
  auto z = q.mean + torch::exp(0.5 * q.log_var) * torch::randn_like(q.mean);
  double elbo = (vae->decoder_log_likelihood(x, z) -
                 0.5 * (q.mean.pow(2) + q.log_var.exp() - 1 - q.log_var).sum(1)).mean().item<double>();
  std::cout << "[ vae 4-Gaussian mixture ] ELBO " << elbo << "  IWAE k=1 " << l1 << "  k=10 " << l10 << "  k=100 "
            << l100 << " nats\n";
  EXPECT_NEAR(l1, elbo, 0.02);
  EXPECT_GT(l10, l1 + 0.005);
  EXPECT_GT(l100, l10 + 0.005);
  // Entropy of the data distribution bounds the model's expected log-likelihood from above
  // (Gibbs), up to the estimate's noise: H ≥ ... here −E log p ≥ H, so L_100 ≤ −H + 0.05.
  // H of 4 well-separated N(c, 0.3²I): log 4 + log(2πe·0.09) (overlap negligible at 2√2/0.3).
  double entropy = std::log(4.0) + std::log(2 * M_PI * M_E * 0.09);
  EXPECT_LT(l100, -entropy + 0.05);
  EXPECT_NEAR(genfw::bits_per_dim(l100, context.data), -l100 / (2 * std::log(2.0)), 1e-12);
}

TEST(Vae, RejectsImageSizeNotMultipleOfFour) {
  torch::manual_seed(0);
  EXPECT_THROW(make_vae(genfw::testing::context_for({1, 30, 30})), genfw::Error);
}

}  // namespace
