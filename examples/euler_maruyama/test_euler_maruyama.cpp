// euler_maruyama against an exact target: analytic_gmm's scores are exact, so
// the samples must follow the mixture itself (up to σ_min² of added variance).
#include <gtest/gtest.h>

#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

using genfw::Kind;
using genfw::testing::context_for;
using genfw::testing::make;

namespace {

// 0.2·N((−5,−5), I) + 0.8·N((5,5), I); its noise levels span σ 20 → 0.01.
const genfw::Matrix kMeans{{-5.0, -5.0}, {5.0, 5.0}};
const std::vector<double> kWeights{0.2, 0.8};

std::unique_ptr<genfw::Model> mixture_model() {
  return make<genfw::Model>(Kind::model, "analytic_gmm",
                            {{"means", kMeans}, {"weights", kWeights}, {"stds", std::vector<double>{1.0}},
                             {"sigma_begin", 20.0}, {"sigma_end", 0.01}, {"num_levels", int64_t(2)}},
                            context_for({2}, -8, 8));
}

std::unique_ptr<genfw::Sampler> sampler(int64_t steps) {
  return make<genfw::Sampler>(Kind::sampler, "euler_maruyama", {{"steps", steps}}, context_for({2}, -8, 8));
}

torch::Tensor draw(genfw::Sampler& sampler, genfw::Model& model, int64_t n, int64_t* nfe = nullptr,
                   torch::Tensor x_init = {}) {
  auto context = genfw::SampleContext::for_model(model, n, context_for({2}, -8, 8).data);
  context.x_init = x_init;
  torch::Tensor x = genfw::draw(sampler, context);
  if (nfe) *nfe = context.nfe;
  return x;
}

}  // namespace

TEST(EulerMaruyama, ShapeSeedAndOneEvaluationPerStep) {
  auto model = mixture_model();
  auto em = sampler(17);
  int64_t nfe = 0;
  torch::manual_seed(3);
  torch::Tensor a = draw(*em, *model, 64, &nfe);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(nfe, 17);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(a, draw(*em, *model, 64)));
}

// Started from the exact marginal at σ_max = 20 (the default prior N(0, σ_max²)
// ignores the mixture's mean (3, 3) and shifts the mode weights by ~0.03, a
// property of the prior, not of the integrator), the samples must follow the
// mixture. 4000 samples: the small mode's weight has s.e. 0.0063, a
// coordinate's mean within a mode s.e. ≤ 0.035, its variance s.e. ≤ 0.05; the
// whole sample's mean s.e. 0.065 and variance s.e. 0.38 (mode-weight noise
// times 10²). Tolerances are ~4 s.e.: at N = 500 steps the Euler–Maruyama bias
// was below the noise (seeds 0-2 at N = 500 and 2000 agree within 2.8 s.e.).
TEST(EulerMaruyama, SamplesTheExactMixture) {
  torch::manual_seed(0);
  genfw::GaussianMixture exact = genfw::GaussianMixture::from_options(kMeans, kWeights, {1.0});
  auto model = mixture_model();
  auto em = sampler(500);
  torch::Tensor x_init = exact.transformed(1.0, 20.0 * 20.0).sample(4000).to(torch::kFloat32);
  torch::Tensor x = draw(*em, *model, 4000, nullptr, x_init).to(torch::kFloat64);
  ASSERT_TRUE(torch::isfinite(x).all().item<bool>());

  torch::Tensor mode = exact.nearest_component(x);
  for (int64_t k = 0; k < 2; ++k) {
    torch::Tensor in_mode = x.index({mode == k});
    EXPECT_NEAR(double(in_mode.size(0)) / 4000.0, kWeights[k], 0.025) << "weight of mode " << k;
    for (int64_t d = 0; d < 2; ++d) {
      EXPECT_NEAR(in_mode.select(1, d).mean().item<double>(), kMeans[k][d], 0.14) << "mode " << k << " dim " << d;
      EXPECT_NEAR(in_mode.select(1, d).var().item<double>(), 1.0, 0.2) << "mode " << k << " dim " << d;
    }
  }
  // Whole-sample moments of the mixture: mean 0.2·(−5) + 0.8·5 = 3, variance 1 + 0.2·0.8·10² = 17.
  EXPECT_NEAR(x.mean().item<double>(), 3.0, 0.25);
  EXPECT_NEAR(x.var(0).mean().item<double>(), 17.0, 1.5);
}

TEST(EulerMaruyama, RefusesAnInvertedNoiseRange) {
  try {
    make<genfw::Sampler>(Kind::sampler, "euler_maruyama", {{"sigma_max", 1.0}, {"sigma_min", 2.0}});
    FAIL() << "expected a genfw::Error";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sampler 'euler_maruyama'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'sigma_min'"), std::string::npos) << e.what();
  }
}
