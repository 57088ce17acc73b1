#include <gtest/gtest.h>

#include <cstdio>

#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::testing::context_for;
using genfw::testing::make;

namespace {
// The paper's toy (Song & Ermon 2019, §3.2.2 and Fig. 3): p = 1/5·N((−5,−5), I)
// + 4/5·N((5,5), I), exact scores (analytic_gmm's defaults), σ geometric 20 → 1
// over 10 levels.
std::unique_ptr<genfw::Model> paper_mixture() {
  return make<genfw::Model>(Kind::model, "analytic_gmm", {}, context_for({2}, -8, 8));
}
torch::Tensor run(genfw::Sampler& sampler, genfw::Model& model, int64_t n, int64_t* nfe = nullptr,
                  std::function<void(const genfw::StepRecord&)> on_step = {}) {
  // Uniform init over [−8, 8]², as the paper.
  auto context = genfw::SampleContext::for_model(model, n, context_for({2}, -8, 8).data);
  context.on_step = std::move(on_step);
  auto x = genfw::draw(sampler, context);
  if (nfe) *nfe = context.nfe;
  return x;
}
double fraction_near_heavy_mode(const torch::Tensor& x) {
  return (x.sum(1) > 0).to(torch::kFloat64).mean().item<double>();
}
}  // namespace

// Judged-by test 1 (the paper's Fig. 3b vs 3c). 2000 chains from U([−8,8]²).
// Plain Langevin with the data score (σ = 0.001, T = 1000, ε = 0.1) leaves each
// chain in the mode of its starting half: the fraction near (5,5) stays at the
// initial split ≈ 0.5 (binomial s.e. 0.011; asserted within 0.07 of 0.5, i.e.
// far from 0.8). Annealed Langevin (T = 100 per level, ε = 0.1: the reference
// toy runner's settings) recovers the weight 0.8 within 0.04 (3.5 s.e.).
TEST(AnnealedLangevin, RecoversMixtureWeightsWherePlainLangevinDoesNot) {
  torch::manual_seed(0);
  auto model = paper_mixture();
  auto plain = make<genfw::Sampler>(Kind::sampler, "langevin",
                                    {{"steps", int64_t(1000)}, {"step_size", 0.1}, {"sigma", 1e-3}},
                                    context_for({2}, -8, 8));
  auto annealed = make<genfw::Sampler>(Kind::sampler, "annealed_langevin",
                                       {{"steps_per_level", int64_t(100)}, {"step_size", 0.1}},
                                       context_for({2}, -8, 8));
  double plain_fraction = fraction_near_heavy_mode(run(*plain, *model, 2000));
  auto annealed_samples = run(*annealed, *model, 2000);
  double annealed_fraction = fraction_near_heavy_mode(annealed_samples);
  std::printf("[ weights ] fraction near (5,5): exact 0.800, langevin %.3f, annealed_langevin %.3f\n",
              plain_fraction, annealed_fraction);
  EXPECT_NEAR(plain_fraction, 0.5, 0.07);
  EXPECT_NEAR(annealed_fraction, 0.8, 0.04);
  // The final level is σ_L = 1, so samples follow p ∗ N(0, I): per-mode std √2.
  auto heavy = annealed_samples.index({annealed_samples.sum(1) > 0});
  EXPECT_NEAR((heavy - 5.0).std().item<double>(), std::sqrt(2.0), 0.12);
}

// Judged-by test 4: shape, reproducibility, NFE = L·T (+1 with denoise), step records.
TEST(AnnealedLangevin, Conformance) {
  auto model = paper_mixture();
  auto sampler = make<genfw::Sampler>(Kind::sampler, "annealed_langevin",
                                      {{"steps_per_level", int64_t(7)}, {"step_size", 0.1}},
                                      context_for({2}, -8, 8));
  int64_t nfe = 0;
  torch::manual_seed(3);
  auto a = run(*sampler, *model, 16, &nfe);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{16, 2}));
  EXPECT_EQ(nfe, 10 * 7);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(a, run(*sampler, *model, 16)));
  torch::manual_seed(4);
  EXPECT_FALSE(torch::equal(a, run(*sampler, *model, 16)));

  auto denoising = make<genfw::Sampler>(Kind::sampler, "annealed_langevin",
                                        {{"steps_per_level", int64_t(7)}, {"denoise", true},
                                         {"sigmas", std::vector<double>{3.0, 2.0, 1.0}}, {"record_every", int64_t(5)}},
                                        context_for({2}, -8, 8));
  std::vector<genfw::StepRecord> records;
  run(*denoising, *model, 16, &nfe, [&](const genfw::StepRecord& r) { records.push_back(r); });
  EXPECT_EQ(nfe, 3 * 7 + 1);
  ASSERT_EQ(records.size(), 4u);  // steps 5, 10, 15, 20 of 21
  EXPECT_EQ(records[0].index, 4);
  EXPECT_EQ(records[0].total, 21);
  EXPECT_DOUBLE_EQ(records[0].noise_level, 3.0);
  EXPECT_DOUBLE_EQ(records[3].noise_level, 1.0);
  EXPECT_EQ(records[3].x0_pred.sizes(), (std::vector<int64_t>{16, 2}));
}

// Denoising is Tweedie's E[x | x̃]: for N(0, s²) data and its exact noised
// score, one annealed chain ending at σ_L followed by x + σ_L² s(x, σ_L) has
// variance (s²+σ²)·(s²/(s²+σ²))² = s⁴/(s²+σ²): with s = 1, σ_L = 1 → 0.5
// (without denoising: 2). The Langevin chain at step α = ε = 0.2 has the
// discretisation-inflated variance v/(1 − α/(4v)), v = 2, hence the expected
// 0.25·2/(1 − 0.025) = 0.513. 4000 samples in 2-D: s.e. ≈ 0.011; tol. 0.05.
TEST(AnnealedLangevin, DenoiseShrinksTowardsTheData) {
  torch::manual_seed(0);
  auto model = make<genfw::Model>(Kind::model, "analytic_gmm",
                                  {{"means", genfw::Matrix{{0.0, 0.0}}}, {"weights", std::vector<double>{1.0}},
                                   {"sigma_begin", 4.0}, {"sigma_end", 1.0}, {"num_levels", int64_t(3)}},
                                  context_for({2}, -8, 8));
  auto sampler = make<genfw::Sampler>(Kind::sampler, "annealed_langevin",
                                      {{"steps_per_level", int64_t(100)}, {"step_size", 0.2}, {"denoise", true}},
                                      context_for({2}, -8, 8));
  auto x = run(*sampler, *model, 4000);
  EXPECT_NEAR(x.var().item<double>(), 0.25 * 2 / (1 - 0.2 / 8), 0.05);
}

TEST(AnnealedLangevin, RefusesBadSigmas) {
  EXPECT_THROW(make<genfw::Sampler>(Kind::sampler, "annealed_langevin",
                                    {{"sigmas", std::vector<double>{1.0, 2.0}}}, context_for({2})),
               genfw::Error);
}

// Each sample draws its noise from its own stream (SampleContext::noise), so batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(AnnealedLangevin, SamplesDoNotDependOnTheBatchSize) {
  auto model = paper_mixture();
  for (std::string init : {"uniform", "gaussian"}) {
    auto sampler = make<genfw::Sampler>(Kind::sampler, "annealed_langevin", {{"init", init}}, context_for({2}, -8, 8));
    const std::string label = "annealed_langevin init = " + init;
    EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, context_for({2}, -8, 8).data, 5, label),
              genfw::testing::kBatchSizeTolerance);
  }
}
