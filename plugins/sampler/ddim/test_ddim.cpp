#include <gtest/gtest.h>

#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::OptionValue;
using genfw::testing::mode_stats;
using genfw::testing::run_sampler;

namespace {
const genfw::GaussianMixture kMixture = genfw::GaussianMixture::from_options(
    {{-5.0, -5.0}, {5.0, 5.0}}, {0.2, 0.8}, {1.0, 1.0});

std::unique_ptr<genfw::Model> analytic() {
  return genfw::testing::make<genfw::Model>(Kind::model, "analytic_gmm_eps", {},
                                            genfw::testing::context_for({2}));
}
std::unique_ptr<genfw::Sampler> ddim(std::map<std::string, OptionValue> o) {
  return genfw::testing::make<genfw::Sampler>(Kind::sampler, "ddim", o);
}
std::vector<int64_t> timesteps_of(const std::string& spacing, int64_t steps) {
  auto model = analytic();
  auto sampler = ddim({{"num_inference_steps", steps}, {"timestep_spacing", spacing}});
  std::vector<genfw::StepRecord> records;
  run_sampler(*sampler, *model, 4, {2}, {}, {}, &records);
  std::vector<int64_t> t;
  for (const auto& r : records) t.push_back(int64_t(r.noise_level));
  return t;
}
}  // namespace

// Test 1 (DDIM part): exact ε, 50 steps, η = 0 and η = 1.
TEST(DdimSampler, ExactEpsSamplesTheMixture) {
  torch::manual_seed(0);
  auto model = analytic();
  for (double eta : {0.0, 1.0}) {
    auto sampler = ddim({{"eta", eta}});
    auto x = run_sampler(*sampler, *model, 8000, {2});
    ASSERT_FALSE(torch::isnan(x).any().item<bool>());
    auto s = mode_stats(kMixture, x);
    // 8000 samples, 1600 in the lighter mode: standard errors there are 0.01 (weight),
    // 0.025 (mean) and 0.018 (std), so these tolerances are ≥ 3 and ≥ 5.6 of them.
    EXPECT_NEAR(s.weight[1], 0.8, 0.03) << "eta " << eta;
    for (int k = 0; k < 2; ++k) {
      for (int d = 0; d < 2; ++d) {
        EXPECT_NEAR(s.mean[k][d].item<double>(), k == 0 ? -5.0 : 5.0, 0.15) << "eta " << eta;
        EXPECT_NEAR(s.std[k][d].item<double>(), 1.0, 0.1) << "eta " << eta << " mode " << k;
      }
    }
  }
}

// Test 2: η = 0 is a deterministic map, and inversion then sampling gives x0 back.
TEST(DdimSampler, DeterministicAndInvertible) {
  torch::manual_seed(0);
  auto model = analytic();
  auto sampler = ddim({{"num_inference_steps", int64_t(100)}});
  auto x_T = torch::randn({500, 2});
  auto a = run_sampler(*sampler, *model, 500, {2}, x_T);
  torch::manual_seed(123);  // different global RNG state must not matter
  auto b = run_sampler(*sampler, *model, 500, {2}, x_T);
  EXPECT_TRUE(torch::equal(a, b));

  auto x0 = kMixture.sample(500).to(torch::kFloat32);
  auto inverter = ddim({{"num_inference_steps", int64_t(100)}, {"invert", true}});
  auto latent = run_sampler(*inverter, *model, 500, {2}, x0);
  // The encoding is Gaussian-like: x_T ≈ N(0, I).
  EXPECT_NEAR(latent.mean().item<double>(), 0.0, 0.15);
  EXPECT_NEAR(latent.std().item<double>(), 1.0, 0.15);
  auto back = run_sampler(*sampler, *model, 500, {2}, latent);
  auto err = (back - x0).norm(2, 1);
  const double median = err.median().item<double>(), mean = err.mean().item<double>();
  std::cout << "DDIM inversion (100 steps) reconstruction error: median " << median << ", mean "
            << mean << ", max " << err.max().item<double>() << "\n";
  // Data scale ~5. Observed: median 0.054, mean 0.12 (a few points near the x+y = 0
  // boundary can switch mode). Bounds: median < 0.1, mean < 0.25.
  EXPECT_LT(median, 0.1);
  EXPECT_LT(mean, 0.25);
  // Both directions are O(1/steps) discretisations of one ODE: 5× the steps must shrink
  // the median error at least 2× (it would not if encoding and decoding disagreed).
  auto fine = ddim({{"num_inference_steps", int64_t(500)}});
  auto fine_inv = ddim({{"num_inference_steps", int64_t(500)}, {"invert", true}});
  auto back_fine = run_sampler(*fine, *model, 500, {2}, run_sampler(*fine_inv, *model, 500, {2}, x0));
  const double median_fine = (back_fine - x0).norm(2, 1).median().item<double>();
  std::cout << "DDIM inversion (500 steps) median error: " << median_fine << "\n";
  EXPECT_LT(median_fine, median / 2);
}

TEST(DdimSampler, InvertRequiresEtaZero) {
  EXPECT_THROW(ddim({{"invert", true}, {"eta", 0.5}}), genfw::Error);
}

// Test 3: diffusers' DDIMScheduler.set_timesteps values, T = 1000, 10 steps.
TEST(DdimSampler, TimestepSpacingsMatchDiffusers) {
  torch::manual_seed(0);
  EXPECT_EQ(timesteps_of("leading", 10),
            (std::vector<int64_t>{900, 800, 700, 600, 500, 400, 300, 200, 100, 0}));
  EXPECT_EQ(timesteps_of("trailing", 10),
            (std::vector<int64_t>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99}));
  EXPECT_EQ(timesteps_of("linspace", 10),
            (std::vector<int64_t>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0}));
  // A non-dividing case: trailing T=1000, 3 steps → round(1000, 666.67, 333.33) − 1.
  EXPECT_EQ(timesteps_of("trailing", 3), (std::vector<int64_t>{999, 666, 332}));
  EXPECT_EQ(timesteps_of("linspace", 3), (std::vector<int64_t>{999, 500, 0}));  // 499.5 → 500 (half to even)
  // steps_offset shifts leading timesteps (Stable Diffusion uses 1).
  auto model = analytic();
  auto sampler = ddim({{"num_inference_steps", int64_t(4)}, {"steps_offset", int64_t(1)}});
  std::vector<genfw::StepRecord> records;
  run_sampler(*sampler, *model, 2, {2}, {}, {}, &records);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].noise_level, 751.0);
  EXPECT_EQ(records[3].noise_level, 1.0);
}

// Test 5: classifier-free guidance with a tiny class-conditional eps_mlp on two
// overlapping labelled components N(∓(1,1), I): even the exact conditional puts only
// Φ(√2) ≈ 0.92 of class-0 samples on class 0's side; guidance (s = 3) sharpens it.
TEST(DdimSampler, ClassifierFreeGuidanceRaisesRequestedModeFraction) {
  torch::manual_seed(0);
  const std::map<std::string, OptionValue> options{
      {"num_train_timesteps", int64_t(100)}, {"beta_end", 0.2}, {"num_classes", int64_t(2)},
      {"hidden", int64_t(64)}};
  auto model = genfw::testing::make<genfw::Model>(Kind::model, "eps_mlp", options,
                                                  genfw::testing::context_for({2}));
  auto objective = genfw::testing::make<genfw::Objective>(Kind::objective, "ddpm",
                                                          {{"label_dropout", 0.2}});
  auto mixture = genfw::GaussianMixture::from_options({{-1.0, -1.0}, {1.0, 1.0}}, {0.5, 0.5},
                                                      {1.0, 1.0});
  auto next_batch = [&] {
    auto k = torch::randint(0, 2, {256}, torch::kLong);
    auto x = mixture.means.index_select(0, k) + torch::randn({256, 2}, torch::kFloat64);
    return genfw::Batch{x.to(torch::kFloat32), k};
  };
  genfw::testing::fit(*model, *objective, next_batch, 1500, 2e-3);

  auto labels = torch::zeros({2000}, torch::kLong);
  auto plain = ddim({});
  auto guided = ddim({{"guidance_scale", 3.0}});
  torch::manual_seed(1);
  auto x_plain = run_sampler(*plain, *model, 2000, {2}, {}, labels);
  torch::manual_seed(1);
  auto x_guided = run_sampler(*guided, *model, 2000, {2}, {}, labels);
  const double before = mode_stats(mixture, x_plain).weight[0];
  const double after = mode_stats(mixture, x_guided).weight[0];
  std::cout << "class-0 side fraction: conditional (no guidance) " << before << ", CFG s=3 "
            << after << "\n";
  // Binomial sd at 2000 samples ≤ 0.011. Exact model: 0.92 unguided; the briefly trained
  // one gives ~0.84 (observed), guided ~1.0.
  EXPECT_GT(before, 0.7);
  EXPECT_LT(before, 0.97);
  EXPECT_GT(after, 0.95);
  EXPECT_GT(after, before + 0.04);
}

// Each sample draws its noise from its own stream (SampleContext::noise), so batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(DdimSampler, SamplesDoNotDependOnTheBatchSize) {
  const auto build = genfw::testing::context_for({2});
  auto model = analytic();
  for (double eta : {0.0, 1.0}) {
    auto sampler = ddim({{"eta", eta}});
    const std::string label = "ddim eta = " + std::to_string(eta);
    EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, build.data, 5, label), genfw::testing::kBatchSizeTolerance);
  }
}
