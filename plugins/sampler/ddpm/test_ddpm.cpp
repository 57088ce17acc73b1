#include <gtest/gtest.h>

#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::OptionValue;
using genfw::testing::mode_stats;
using genfw::testing::run_sampler;

namespace {
const genfw::GaussianMixture kMixture = genfw::GaussianMixture::from_options(
    {{-5.0, -5.0}, {5.0, 5.0}}, {0.2, 0.8}, {1.0, 1.0});

void expect_matches_mixture(const torch::Tensor& x, const std::string& what) {
  ASSERT_FALSE(torch::isnan(x).any().item<bool>()) << what;
  auto s = mode_stats(kMixture, x);
  // 2000 samples: binomial sd of the weight √(0.16/2000) = 0.009 → ±0.03 (3.4 sd).
  EXPECT_NEAR(s.weight[1], 0.8, 0.03) << what;
  for (int k = 0; k < 2; ++k) {
    // ~400 / ~1600 samples per mode: sd of a mean ≤ 0.05, of a std ≤ 0.035 → ±0.15 / ±0.1.
    for (int d = 0; d < 2; ++d) {
      EXPECT_NEAR(s.mean[k][d].item<double>(), k == 0 ? -5.0 : 5.0, 0.15) << what << " mode " << k;
      EXPECT_NEAR(s.std[k][d].item<double>(), 1.0, 0.1) << what << " mode " << k;
    }
  }
}
}  // namespace

// Test 1 (DDPM part): exact ε, T = 1000 linear; both reverse variances.
TEST(DdpmSampler, ExactEpsSamplesTheMixture) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(Kind::model, "analytic_gmm_eps", {},
                                                  genfw::testing::context_for({2}));
  for (std::string variance : {"fixed_small", "fixed_large"}) {
    auto sampler = genfw::testing::make<genfw::Sampler>(
        Kind::sampler, "ddpm", {{"variance", variance}, {"clip_sample", false}});
    std::vector<genfw::StepRecord> records;
    auto x = run_sampler(*sampler, *model, 2000, {2}, {}, {}, &records);
    EXPECT_EQ(records.size(), 1000u);
    EXPECT_EQ(records.front().noise_level, 999.0);
    EXPECT_EQ(records.back().noise_level, 0.0);
    expect_matches_mixture(x, variance);
  }
}

TEST(DdpmSampler, RecordsPredictedX0EveryK) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(
      Kind::model, "analytic_gmm_eps", {{"num_train_timesteps", int64_t(20)}, {"beta_end", 0.3}},
      genfw::testing::context_for({2}));
  auto sampler = genfw::testing::make<genfw::Sampler>(
      Kind::sampler, "ddpm", {{"record_x0_every", int64_t(5)}, {"clip_sample", true}});
  std::vector<genfw::StepRecord> records;
  auto x = run_sampler(*sampler, *model, 16, {2}, {}, {}, &records);
  ASSERT_EQ(records.size(), 20u);
  for (const auto& r : records) {
    EXPECT_EQ(r.x0_pred.defined(), r.index % 5 == 0) << r.index;
    if (r.x0_pred.defined()) {  // clip_sample keeps x̂0 in the data range [-1, 1]
      EXPECT_LE(r.x0_pred.abs().max().item<double>(), 1.0);
    }
  }
}

// Classifier guidance (Dhariwal & Nichol): exact unconditional ε of a 50/50 mixture
// plus a noisy classifier trained through the objective plugin; requesting class 0
// moves the samples into mode 0.
TEST(DdpmSampler, ClassifierGuidanceSelectsTheRequestedMode) {
  torch::manual_seed(0);
  const std::map<std::string, OptionValue> schedule{
      {"num_train_timesteps", int64_t(100)}, {"beta_schedule", std::string("linear")},
      {"beta_start", 1e-4}, {"beta_end", 0.2}};
  auto mixture = genfw::GaussianMixture::from_options({{-2.0, -2.0}, {2.0, 2.0}}, {0.5, 0.5},
                                                      {1.0, 1.0});
  auto model_options = schedule;
  model_options["means"] = genfw::Matrix{{-2.0, -2.0}, {2.0, 2.0}};
  model_options["weights"] = std::vector<double>{0.5, 0.5};
  auto model = genfw::testing::make<genfw::Model>(Kind::model, "analytic_gmm_eps", model_options,
                                                  genfw::testing::context_for({2}));
  auto classifier_options = schedule;
  classifier_options["num_classes"] = int64_t(2);
  auto classifier = genfw::testing::make<genfw::Model>(Kind::model, "noisy_classifier",
                                                       classifier_options,
                                                       genfw::testing::context_for({2}));
  auto objective = genfw::testing::make<genfw::Objective>(Kind::objective, "noisy_classifier");
  auto next_batch = [&] {
    auto k = torch::randint(0, 2, {256}, torch::kLong);
    auto x = mixture.means.index_select(0, k) + torch::randn({256, 2}, torch::kFloat64);
    return genfw::Batch{x.to(torch::kFloat32), k};
  };
  genfw::testing::fit(*classifier, *objective, next_batch, 600, 3e-3);

  auto sampler = genfw::testing::make<genfw::Sampler>(
      Kind::sampler, "ddpm", {{"clip_sample", false}, {"guidance_scale", 2.0}});
  // No needs_gradients(): the guidance wrapper takes the classifier's gradient itself.
  auto labels = torch::zeros({1000}, torch::kLong);
  auto unguided = run_sampler(*sampler, *model, 1000, {2}, {}, labels);
  auto x = run_sampler(*sampler, *model, 1000, {2}, {}, labels, nullptr, -1.0, 1.0, classifier.get());
  const double before = mode_stats(mixture, unguided).weight[0];
  const double after = mode_stats(mixture, x).weight[0];
  std::cout << "class-0 fraction: unguided " << before << ", classifier-guided (s=2) " << after << "\n";
  // Unguided: 0.5 ± 0.05 (binomial sd 0.016). Guided, s = 2 ≈ sampling p(x|y)·p(y|x):
  // exact classifier would give ≈ 0.99; a briefly trained one > 0.9.
  EXPECT_NEAR(before, 0.5, 0.05);
  EXPECT_GT(after, 0.9);
}

// Each sample draws its noise from its own stream (SampleContext::noise), so batch sizes
// 1, 7 and 64 give the same samples up to float32 kernel rounding (printed).
TEST(DdpmSampler, SamplesDoNotDependOnTheBatchSize) {
  const auto build = genfw::testing::context_for({2});
  auto model = genfw::testing::make<genfw::Model>(Kind::model, "analytic_gmm_eps", {}, build);
  auto sampler = genfw::testing::make<genfw::Sampler>(Kind::sampler, "ddpm");
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, build.data, 5, "ddpm"), genfw::testing::kBatchSizeTolerance);
}
