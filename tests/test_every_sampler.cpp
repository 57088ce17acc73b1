// Every sampler that takes a denoiser, on every exact model of one mixture (a score
// model, an ε-predictor and a v-predictor of 0.2·N((−5,−5), I) + 0.8·N((5,5), I)),
// through the one path samplers have to a model (genfw/denoiser.hpp). The mixture
// error is the largest deviation of the mode weight, per-mode means and stds from
// the mixture's over 2000 samples; the bound is stated below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../data/fixtures/mixture_checks.hpp"
#include "genfw/diffusion.hpp"

using genfw::OptionValue;
using namespace genfw_sde::test;

namespace {

struct SamplerCase {
  std::string name;
  std::map<std::string, OptionValue> options;
  bool mixes_modes = true;  // plain Langevin at one σ does not (Song & Ermon 2019, Fig. 3b)
};

const std::vector<SamplerCase>& sampler_cases() {
  static const std::vector<SamplerCase> cases{
      {"langevin", {{"steps", int64_t(500)}, {"step_size", 0.1}}, false},
      {"annealed_langevin",
       {{"sigmas", genfw::host_values(genfw::geometric_sigmas(20.0, 0.1, 20))},
        {"steps_per_level", int64_t(50)},
        {"step_size", 0.01},
        {"denoise", true}}},
      {"pc", {{"steps", int64_t(300)}}},
      {"ode", {}},
      {"reverse_sde", {{"steps", int64_t(500)}}},
      {"ddpm", {}},
      {"ddim", {{"num_inference_steps", int64_t(50)}}},
      {"dpm_solver", {{"steps", int64_t(20)}}},
      {"edm", {}},
  };
  return cases;
}

std::unique_ptr<genfw::Model> model_of(const std::string& family) {
  const auto build = genfw::testing::context_for({2}, -8, 8);
  if (family == "score") {
    return genfw::testing::make<genfw::Model>(
        genfw::Kind::model, "analytic_gmm",
        {{"sigma_begin", 20.0}, {"sigma_end", 0.01}, {"num_levels", int64_t(100)}}, build);
  }
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "analytic_gmm_eps",
                                            {{"prediction_type", family}}, build);
}

// Largest deviation of the statistics `mode_stats` measures from the mixture's.
double mixture_error(const torch::Tensor& x, bool with_weight) {
  if (!torch::isfinite(x).all().item<bool>()) return INFINITY;
  auto s = genfw::testing::mode_stats(mixture(), x);
  double error = with_weight ? std::abs(s.weight[1] - 0.8) : 0.0;
  for (int k = 0; k < 2; ++k) {
    error = std::max(error, (s.mean[k] - (k == 0 ? -5.0 : 5.0)).abs().max().item<double>());
    error = std::max(error, (s.std[k] - 1.0).abs().max().item<double>());
  }
  return error;
}

}  // namespace

// 2000 samples, 400 in the small mode: standard errors 0.009 (weight), ≤ 0.05 (its
// means), ≤ 0.035 (its stds), so 4 s.e. ≈ 0.2; each sampler's discretisation at the
// budgets above adds at most a few hundredths (printed). Bound: 0.25.
TEST(EverySampler, RecoversTheMixtureFromEveryExactModel) {
  for (const std::string family : {"score", "epsilon", "v_prediction"}) {
    auto model = model_of(family);
    for (const auto& c : sampler_cases()) {
      torch::manual_seed(0);
      auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, c.name, c.options,
                                                          genfw::testing::context_for({2}, -8, 8));
      int64_t nfe = 0;
      auto x = draw(*sampler, *model, 2000, {}, &nfe);
      const double error = mixture_error(x, c.mixes_modes);
      std::printf("[ %-17s on %-12s ] mixture error %.3f, NFE %lld\n", c.name.c_str(), family.c_str(), error,
                  (long long)nfe);
      EXPECT_LT(error, 0.25) << c.name << " on " << family;
      EXPECT_GT(nfe, 0) << c.name;
    }
  }
}
