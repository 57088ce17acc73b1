#include <gtest/gtest.h>

#include <genfw/testing.hpp>

#include <cmath>

using genfw::Kind;

namespace {

std::unique_ptr<genfw::Model> make_model(std::map<std::string, genfw::OptionValue> o = {}) {
  return genfw::testing::make<genfw::Model>(Kind::model, "analytic_gmm_eps", o,
                                            genfw::testing::context_for({2}));
}

// Independent ∇ log p_t by autograd through a hand-written mixture log-density.
torch::Tensor reference_score(const torch::Tensor& x, double alpha_bar) {
  torch::AutoGradMode grad(true);
  auto xg = x.to(torch::kFloat64).detach().requires_grad_(true);
  const double w[2] = {0.2, 0.8}, mu[2] = {-5.0, 5.0};
  const double var = alpha_bar * 1.0 + 1 - alpha_bar;
  std::vector<torch::Tensor> terms;
  for (int k = 0; k < 2; ++k) {
    auto d2 = (xg - std::sqrt(alpha_bar) * mu[k]).pow(2).sum(1);
    terms.push_back(std::log(w[k]) - std::log(2 * M_PI * var) - d2 / (2 * var));
  }
  auto logp = torch::logsumexp(torch::stack(terms, 1), 1).sum();
  return torch::autograd::grad({logp}, {xg})[0];
}

}  // namespace

TEST(AnalyticGmmEps, EpsIsMinusSqrtOneMinusAlphaBarTimesScore) {
  torch::manual_seed(0);
  auto model = make_model();
  auto* net = genfw::as<genfw::NoisePredictor>(*model);
  ASSERT_NE(net, nullptr);
  auto x = torch::randn({64, 2}, torch::kFloat64) * 4;
  for (int64_t t : {0, 10, 250, 500, 999}) {
    const double ab = net->schedule().alphas_cumprod[t].item<double>();
    auto eps = net->predict(x, torch::full({64}, t, torch::kLong), {});
    auto expected = -std::sqrt(1 - ab) * reference_score(x, ab);
    // float64 throughout: agreement to rounding.
    EXPECT_LT((eps - expected).abs().max().item<double>(), 1e-9) << "t=" << t;
  }
}

TEST(AnalyticGmmEps, PredictionTypesAreConsistent) {
  torch::manual_seed(0);
  auto eps_model = make_model();
  auto x = torch::randn({32, 2}, torch::kFloat64) * 3;
  auto t = torch::randint(0, 1000, {32}, torch::kLong);
  auto* e = genfw::as<genfw::NoisePredictor>(*eps_model);
  auto eps = e->predict(x, t, {});
  auto ab = e->schedule().alphas_cumprod.index_select(0, t);
  for (std::string type : {"sample", "v_prediction"}) {
    auto model = make_model({{"prediction_type", type}});
    auto* net = genfw::as<genfw::NoisePredictor>(*model);
    EXPECT_EQ(genfw::prediction_type_name(net->prediction_type()), type);
    auto back = genfw::eps_from_prediction(net->prediction_type(), net->predict(x, t, {}), x, ab);
    EXPECT_LT((back - eps).abs().max().item<double>(), 1e-6) << type;
  }
}

// Test 7: schedules carried by the model options.
TEST(AnalyticGmmEps, LinearScheduleAlphaBarMatchesIndependentProduct) {
  auto model = make_model();
  const auto& s = genfw::as<genfw::NoisePredictor>(*model)->schedule();
  ASSERT_EQ(s.num_steps(), 1000);
  double prod = 1.0;
  double max_err = 0.0;
  for (int i = 0; i < 1000; ++i) {
    const double beta = 1e-4 + (0.02 - 1e-4) * i / 999.0;
    prod *= 1 - beta;
    max_err = std::max(max_err, std::abs(prod - s.alphas_cumprod[i].item<double>()));
  }
  EXPECT_LT(max_err, 1e-12);
  // Ho et al.: ᾱ_T ≈ 4.04e-5 for T = 1000, β 1e-4 → 0.02.
  EXPECT_NEAR(s.alphas_cumprod[999].item<double>(), 4.0358e-5, 1e-8);
}

TEST(AnalyticGmmEps, CosineScheduleTelescopesAndEndsNearZero) {
  auto model = make_model({{"beta_schedule", std::string("squaredcos_cap_v2")}});
  const auto& s = genfw::as<genfw::NoisePredictor>(*model)->schedule();
  auto f = [](double u) { return std::pow(std::cos((u + 0.008) / 1.008 * M_PI / 2), 2); };
  // Uncapped steps: ᾱ_t = f((t+1)/T) / f(0) exactly (Nichol & Dhariwal eq. 17).
  for (int t : {0, 100, 500, 900, 980}) {
    EXPECT_NEAR(s.alphas_cumprod[t].item<double>(), f((t + 1) / 1000.0) / f(0), 1e-10) << t;
  }
  EXPECT_LT(s.alphas_cumprod[999].item<double>(), 1e-6);
  EXPECT_LE(s.betas.max().item<double>(), 0.999);
}
