// The denoiser (genfw/denoiser.hpp) and its wrappers against exact answers:
// GaussianMixture's scores for a score model and for noise predictors of ε, x0
// and v at grid and off-grid σ, the SDE view (genfw/sde.hpp) on VP, the VP
// schedule of a score model's levels, guidance's algebra and the evaluation hook.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/gaussian_mixture.hpp"
#include "genfw/guidance.hpp"
#include "genfw/sde.hpp"
#include "genfw/testing.hpp"

namespace {

const genfw::Matrix kMeans{{-2.0, 1.0}, {3.0, 0.5}};
const std::vector<double> kWeights{0.4, 0.6}, kStds{0.7, 1.2};

const genfw::GaussianMixture& mixture() {
  static const auto m = genfw::GaussianMixture::from_options(kMeans, kWeights, kStds);
  return m;
}

std::unique_ptr<genfw::Model> mixture_model(const std::string& plugin, const std::string& prediction = "epsilon") {
  std::map<std::string, genfw::OptionValue> options{{"means", kMeans}, {"weights", kWeights}, {"stds", kStds}};
  if (plugin == "analytic_gmm_eps") options["prediction_type"] = prediction;
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, plugin, options, genfw::testing::context_for({2}));
}

// ∇ log p_σ(x) of the mixture plus N(0, σ²I): the VP score at ᾱ = 1/(1+σ²), scaled back.
torch::Tensor exact_ve_score(const torch::Tensor& x, double sigma) {
  const double alpha_bar = 1 / (1 + sigma * sigma);
  return std::sqrt(alpha_bar) *
         mixture().score_vp(std::sqrt(alpha_bar) * x, torch::full({x.size(0)}, alpha_bar, torch::kFloat64));
}

double relative_error(const torch::Tensor& got, const torch::Tensor& expected) {
  return ((got - expected).abs().max() / (1 + expected.abs().max())).item<double>();
}

}  // namespace

// A score model: D = x + σ²s, and score() gives s back (float64: rounding only).
TEST(Denoiser, ScoreModelThroughTweedie) {
  auto model = mixture_model("analytic_gmm");
  genfw::ModelDenoiser denoiser(*model);
  auto x = 3 * torch::randn({64, 2}, torch::kFloat64);
  for (double sigma : {0.01, 0.5, 7.0}) {
    const auto exact = mixture().score_with_noise(x, torch::full({64}, sigma, torch::kFloat64));
    EXPECT_LT(relative_error(denoiser.score(x, sigma), exact), 1e-9) << sigma;
    EXPECT_LT(relative_error(denoiser(x, sigma), x + sigma * sigma * exact), 1e-9) << sigma;
  }
  EXPECT_EQ(denoiser.levels().schedule, nullptr);
  EXPECT_DOUBLE_EQ(denoiser.levels().sigma_max, denoiser.levels().sigmas[0].item<double>());
}

// A noise predictor of ε, x0 or v, at a level of its own schedule (σ_300) with either
// rounding, and between levels: exact with interpolated t (the fractional timestep maps
// back to exactly σ), off by the level gap with the nearest t.
TEST(Denoiser, NoisePredictorsAtAndBetweenTheirLevels) {
  auto x = 3 * torch::randn({64, 2}, torch::kFloat64);
  for (const std::string prediction : {"epsilon", "sample", "v_prediction"}) {
    auto model = mixture_model("analytic_gmm_eps", prediction);
    const auto& schedule = genfw::as<genfw::NoisePredictor>(*model)->schedule();
    const auto sigmas = schedule.ve_sigmas();
    genfw::ModelDenoiser nearest(*model, genfw::DiscreteTime::nearest);
    genfw::ModelDenoiser interpolated(*model, genfw::DiscreteTime::interpolated);
    const double on_grid = sigmas[300].item<double>();
    const double between = std::sqrt(sigmas[300].item<double>() * sigmas[301].item<double>());
    EXPECT_LT(relative_error(nearest.score(x, on_grid), exact_ve_score(x, on_grid)), 1e-8) << prediction;
    EXPECT_LT(relative_error(interpolated.score(x, on_grid), exact_ve_score(x, on_grid)), 1e-8) << prediction;
    EXPECT_LT(relative_error(interpolated.score(x, between), exact_ve_score(x, between)), 1e-8) << prediction;
    EXPECT_GT(relative_error(nearest.score(x, between), exact_ve_score(x, between)), 1e-5) << prediction;
    EXPECT_EQ(nearest.levels().schedule, &schedule);
    EXPECT_NEAR(nearest.levels().sigma_max, sigmas[-1].item<double>(), 1e-12);
  }
}

// σ → t and back: nearest gives the level's index; interpolated a fraction that
// alpha_bar_at maps back to ᾱ = 1/(1+σ²); both clamp outside the schedule's range.
TEST(Denoiser, ScheduleTimeRoundTrips) {
  auto schedule = genfw::DiffusionSchedule::from_betas(genfw::beta_schedule("linear", 1000, 1e-4, 0.02));
  const auto sigmas = schedule.ve_sigmas();
  const double between = std::sqrt(sigmas[10].item<double>() * sigmas[11].item<double>());
  auto sigma = torch::tensor({sigmas[300].item<double>(), between, 1e-6, 1e6}, torch::kFloat64);
  genfw::ScheduleTime nearest(schedule, genfw::DiscreteTime::nearest);
  genfw::ScheduleTime interpolated(schedule, genfw::DiscreteTime::interpolated);
  auto t = nearest.timesteps(sigma);
  EXPECT_EQ(t.scalar_type(), torch::kLong);
  EXPECT_EQ(t[0].item<int64_t>(), 300);
  EXPECT_EQ(t[2].item<int64_t>(), 0);
  EXPECT_EQ(t[3].item<int64_t>(), 999);
  auto fractional = interpolated.timesteps(sigma);
  EXPECT_NEAR(fractional[0].item<double>(), 300.0, 1e-3);
  EXPECT_GT(fractional[1].item<double>(), 10.0);
  EXPECT_LT(fractional[1].item<double>(), 11.0);
  EXPECT_EQ(fractional[2].item<double>(), 0.0);
  EXPECT_EQ(fractional[3].item<double>(), 999.0);
  auto alpha_bar = genfw::alpha_bar_at(schedule, fractional.slice(0, 0, 2).to(torch::kFloat64),
                                       torch::empty({0}, torch::kFloat64));
  EXPECT_NEAR(alpha_bar[1].item<double>(), 1 / (1 + between * between), 1e-9);
}

// The SDE view: the VP marginal of the data is the law of m·X + s·ε, so ∇x log p_t
// is the mixture's score_vp at ᾱ = m², from a score model and (interpolated t) from
// a noise predictor whose SDE is not its own; each call one counted evaluation.
TEST(Denoiser, SdeViewIsExactOnVp) {
  const genfw::VpSde vp(0.1, 20.0);
  auto x = 2 * torch::randn({32, 2}, torch::kFloat64);
  for (const std::string plugin : {"analytic_gmm", "analytic_gmm_eps"}) {
    auto model = mixture_model(plugin);
    genfw::ModelDenoiser denoiser(*model, genfw::DiscreteTime::interpolated);
    int64_t evaluations = 0;
    denoiser.set_evaluation_hook([&](int64_t cost) { evaluations += cost; });
    genfw::SdeView view(denoiser, vp);
    for (double t : {0.05, 0.4, 0.9}) {
      const double m = vp.mean_coefficient(t);
      auto exact = mixture().score_vp(x, torch::full({32}, m * m, torch::kFloat64));
      EXPECT_LT(relative_error(view.score(x, t), exact), 1e-7) << plugin << " t " << t;
      auto expected_flow = -0.5 * vp.beta(t) * x - 0.5 * vp.beta(t) * exact;
      EXPECT_LT(relative_error(view.probability_flow(x, t), expected_flow), 1e-7) << plugin << " t " << t;
    }
    EXPECT_EQ(evaluations, 6) << plugin;
  }
}

// A score model's levels as a DDPM schedule: ᾱ_k = 1/(1+σ_k²) ascending in σ; a noise
// predictor's schedule comes back as it is.
TEST(Denoiser, VpScheduleOfTheLevels) {
  auto model = mixture_model("analytic_gmm");
  genfw::ModelDenoiser denoiser(*model);
  auto schedule = genfw::vp_schedule(denoiser.levels());
  auto sigmas = denoiser.levels().sigmas.flip(0);
  EXPECT_LT((schedule.alphas_cumprod - (1 + sigmas.pow(2)).reciprocal()).abs().max().item<double>(), 1e-12);
  auto eps_model = mixture_model("analytic_gmm_eps");
  genfw::ModelDenoiser eps_denoiser(*eps_model);
  EXPECT_TRUE(torch::equal(genfw::vp_schedule(eps_denoiser.levels()).betas,
                           genfw::as<genfw::NoisePredictor>(*eps_model)->schedule().betas));
}

// Classifier-free guidance is D(∅) + s(D(y) − D(∅)): s = 1 is the conditional
// denoiser, s = 0 the unconditional one, and s = 3 extrapolates linearly; each call
// costs 2 evaluations through the hook, which runs before the network and may stop it.
TEST(Denoiser, ClassifierFreeGuidanceAndTheHook) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "eps_mlp",
                                                  {{"num_classes", int64_t(3)}}, genfw::testing::context_for({2}));
  model->eval();
  auto conditional = std::make_shared<genfw::ModelDenoiser>(*model);
  auto labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  auto x = torch::randn({4, 2});
  auto sigma = torch::full({4}, 0.7);
  auto with_labels = conditional->denoise_given(x, sigma, labels);
  auto without = conditional->denoise_given(x, sigma, torch::full({4}, 3, torch::kLong));
  EXPECT_GT((with_labels - without).abs().max().item<double>(), 1e-4);  // the labels matter
  for (double scale : {0.0, 1.0, 3.0}) {
    genfw::ClassifierFreeGuidance guided(conditional, labels, scale);
    int64_t evaluations = 0;
    guided.set_evaluation_hook([&](int64_t cost) { evaluations += cost; });
    EXPECT_LT((guided(x, sigma) - (without + scale * (with_labels - without))).abs().max().item<double>(), 1e-5);
    EXPECT_EQ(evaluations, 2);
  }
  genfw::ClassifierFreeGuidance stopping(conditional, labels, 2.0);
  stopping.set_evaluation_hook([](int64_t) { throw genfw::Error("stop requested"); });
  EXPECT_THROW(stopping(x, sigma), genfw::Error);
}

// sampling_denoiser counts every evaluation in the context's NFE and calls its
// on_evaluation with the running total.
TEST(Denoiser, SamplingDenoiserCountsInTheContext) {
  auto model = mixture_model("analytic_gmm");
  auto context = genfw::SampleContext::for_model(*model, 8, genfw::testing::context_for({2}).data);
  std::vector<int64_t> seen;
  context.on_evaluation = [&](int64_t nfe) { seen.push_back(nfe); };
  auto options = genfw::Options::with_defaults(genfw::denoiser_schema(), "sampler 'test'");
  auto denoiser = genfw::sampling_denoiser(context, options);
  auto x = torch::randn({8, 2});
  denoiser->score(x, 1.0);
  (*denoiser)(x, 0.5);
  EXPECT_EQ(context.nfe, 2);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
}
