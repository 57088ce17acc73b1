#include <gtest/gtest.h>

#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

#include <cstdio>

using genfw::Kind;
using genfw::testing::context_for;
using genfw::testing::make;

TEST(ScoreMlp, ShapesLevelsAndGradients) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "score_mlp",
                                  {{"hidden", int64_t(32)}, {"num_levels", int64_t(4)},
                                   {"sigma_begin", 2.0}, {"sigma_end", 0.25}},
                                  context_for({1, 2, 2}));
  auto score = genfw::as<genfw::ScoreModel>(*model);
  ASSERT_NE(score, nullptr);
  EXPECT_TRUE(torch::allclose(score->noise_levels(), genfw::geometric_sigmas(2.0, 0.25, 4)));
  auto x = torch::randn({6, 1, 2, 2});
  auto s = score->score(x, torch::full({6}, 0.5));
  ASSERT_EQ(s.sizes(), x.sizes());
  s.pow(2).sum().backward();
  double grad_norm = 0;
  for (auto& p : model->parameters()) grad_norm += p.grad().pow(2).sum().item<double>();
  EXPECT_GT(grad_norm, 0.0);
}

// s = f(x, e(log σ))/σ: a [1] σ broadcasts like a per-sample [N] one, and
// σ·s = f stays O(1) at initialisation over four decades of σ (without the
// division, s itself would be O(1) and σ·s would reach 100).
TEST(ScoreMlp, OutputScalesAsOneOverSigma) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "score_mlp", {}, context_for({2}));
  auto score = genfw::as<genfw::ScoreModel>(*model);
  auto x = torch::randn({8, 2});
  for (double sigma : {0.01, 1.0, 100.0}) {
    auto per_sample = score->score(x, torch::full({8}, sigma));
    auto broadcast = score->score(x, torch::full({1}, sigma));
    EXPECT_TRUE(torch::allclose(per_sample, broadcast));
    EXPECT_LT((per_sample * sigma).abs().max().item<double>(), 10.0) << "sigma " << sigma;
  }
}

TEST(ScoreMlp, RefusesBadOptions) {
  EXPECT_THROW(make<genfw::Model>(Kind::model, "score_mlp", {{"sigma_end", 0.0}}, context_for({2})),
               genfw::Error);
  EXPECT_THROW(make<genfw::Model>(Kind::model, "score_mlp", {{"activation", std::string("gelu")}},
                                  context_for({2})),
               genfw::Error);
}

// ---------------------------------------------------------------------------
// Score-matching objectives recover the analytic score (judged-by test 2).
// Data: 0.3·N((−2,−2), 0.5²I) + 0.7·N((2,2), 0.5²I). After training, the
// relative error E‖s_θ − s‖² / E‖s‖² is measured on 4000 fresh samples of the
// data noised at each trained σ, s being the exact score of p ∗ N(0, σ²I).
// Bound 0.1: a model that ignored the mixture structure (the best single
// Gaussian's linear score) scores ≈ 0.5 here, and a constant-zero model 1.0; a
// fit from a few hundred Adam steps lands well under 0.05 (see the printed
// table), so 0.1 leaves room for run-to-run noise yet fails a wrong objective.
namespace {

genfw::GaussianMixture toy_mixture() {
  return genfw::GaussianMixture::from_options({{-2.0, -2.0}, {2.0, 2.0}}, {0.3, 0.7}, {0.5});
}

double relative_error(genfw::Model& model, const genfw::GaussianMixture& mixture, double sigma) {
  torch::NoGradGuard no_grad;
  auto clean = mixture.sample(4000);
  auto x = clean + sigma * torch::randn_like(clean);
  auto exact = mixture.score_with_noise(x, torch::full({4000}, sigma, torch::kFloat64));
  auto learned = genfw::as<genfw::ScoreModel>(model)->score(x.to(torch::kFloat32), torch::full({4000}, sigma))
                     .to(torch::kFloat64);
  return ((learned - exact).pow(2).sum() / exact.pow(2).sum()).item<double>();
}

struct Case {
  std::string objective;
  std::map<std::string, genfw::OptionValue> objective_options;
  std::vector<double> sigmas;  // the model's noise levels, descending
  int64_t steps;
};

std::vector<double> train_and_measure(const Case& c) {
  torch::manual_seed(0);
  auto mixture = toy_mixture();
  double begin = c.sigmas.front(), end = c.sigmas.back();
  auto model = make<genfw::Model>(Kind::model, "score_mlp",
                                  {{"hidden", int64_t(64)}, {"layers", int64_t(2)},
                                   {"sigma_begin", begin}, {"sigma_end", end},
                                   {"num_levels", int64_t(c.sigmas.size())}},
                                  context_for({2}));
  auto objective = make<genfw::Objective>(Kind::objective, c.objective, c.objective_options, context_for({2}));
  genfw::testing::fit(*model, *objective,
                      [&] { return genfw::Batch{mixture.sample(256).to(torch::kFloat32), {}}; }, c.steps, 3e-3);
  std::vector<double> errors;
  for (double sigma : c.sigmas) errors.push_back(relative_error(*model, mixture, sigma));
  return errors;
}

void expect_fits(const Case& c) {
  auto errors = train_and_measure(c);
  for (size_t i = 0; i < errors.size(); ++i) {
    std::printf("[ relerr ] %-7s sigma=%-6.3g E|s_theta-s|^2/E|s|^2 = %.4f\n", c.objective.c_str(), c.sigmas[i],
                errors[i]);
    EXPECT_LT(errors[i], 0.1) << c.objective << " at sigma " << c.sigmas[i];
  }
}

}  // namespace

// esm/ssm/ssm_vr train one level: the model has the single level σ = 1, and
// the objective's default sigma = 0 resolves to it (data perturbed by σ = 1).
TEST(ScoreMlpFit, ExactScoreMatching) { expect_fits({"esm", {}, {1.0}, 600}); }
TEST(ScoreMlpFit, SlicedScoreMatching) { expect_fits({"ssm", {}, {1.0}, 600}); }
TEST(ScoreMlpFit, SlicedScoreMatchingVarianceReduced) { expect_fits({"ssm_vr", {}, {1.0}, 600}); }
// dsm trains all of the model's levels at once (geometric 2 → 0.5, 3 levels).
TEST(ScoreMlpFit, DenoisingScoreMatching) { expect_fits({"dsm", {}, {2.0, 1.0, 0.5}, 1500}); }
