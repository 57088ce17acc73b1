#pragma once
/// Test helpers shared by the SDE-view samplers' tests (header-only, not a plugin):
/// the 2-D mixture they sample, the exact models of it, and one check that a
/// sample recovers it (mode weights, per-mode means and stds).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "../diffusion_shared/test_support.hpp"

namespace genfw_sde::test {

/// 0.2·N((−5,−5), I) + 0.8·N((5,5), I): Song & Ermon 2019's toy.
inline const genfw::GaussianMixture& mixture() {
  static const genfw::GaussianMixture m =
      genfw::GaussianMixture::from_options({{-5.0, -5.0}, {5.0, 5.0}}, {0.2, 0.8}, {1.0, 1.0});
  return m;
}

/// Its exact VE score s(x, σ) (analytic_gmm), noise levels σ 20 → 0.01.
inline std::unique_ptr<genfw::Model> exact_score_model() {
  return genfw::testing::make<genfw::Model>(
      genfw::Kind::model, "analytic_gmm",
      {{"sigma_begin", 20.0}, {"sigma_end", 0.01}, {"num_levels", int64_t(2)}},
      genfw::testing::context_for({2}, -8, 8));
}

/// Its exact ε(x_t, t) under DDPM's linear β schedule 1e-4 → 0.02, T = 1000 (analytic_gmm_eps).
inline std::unique_ptr<genfw::Model> exact_eps_model(std::map<std::string, genfw::OptionValue> options = {}) {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "analytic_gmm_eps", options,
                                            genfw::testing::context_for({2}, -8, 8));
}

/// Allowed deviations of the per-mode statistics from the mixture's.
struct Tolerance {
  double weight, mean, std;
};

/// Samples x [N, 2] recover the mixture within `tol` (each sampler's test states why).
inline void expect_mixture(const torch::Tensor& x, const Tolerance& tol, const std::string& label) {
  ASSERT_TRUE(torch::isfinite(x).all().item<bool>()) << label;
  auto s = genfw_diffusion::test::mode_stats(mixture(), x);
  std::printf("[ %s ] weight of (5,5) %.4f; means (%.3f, %.3f) (%.3f, %.3f); stds (%.3f, %.3f) (%.3f, %.3f)\n",
              label.c_str(), s.weight[1], s.mean[0][0].item<double>(), s.mean[0][1].item<double>(),
              s.mean[1][0].item<double>(), s.mean[1][1].item<double>(), s.std[0][0].item<double>(),
              s.std[0][1].item<double>(), s.std[1][0].item<double>(), s.std[1][1].item<double>());
  EXPECT_NEAR(s.weight[1], 0.8, tol.weight) << label;
  for (int k = 0; k < 2; ++k) {
    for (int d = 0; d < 2; ++d) {
      EXPECT_NEAR(s.mean[k][d].item<double>(), k == 0 ? -5.0 : 5.0, tol.mean) << label << " mode " << k;
      EXPECT_NEAR(s.std[k][d].item<double>(), 1.0, tol.std) << label << " mode " << k;
    }
  }
}

/// Runs a sampler, returning the samples and (optionally) its NFE and step records.
inline torch::Tensor draw(genfw::Sampler& sampler, genfw::Model& model, int64_t n, torch::Tensor x_init = {},
                          int64_t* nfe = nullptr, std::vector<genfw::StepRecord>* records = nullptr) {
  torch::NoGradGuard no_grad;
  genfw::SampleContext context;
  context.model = &model;
  context.num_samples = n;
  context.data = genfw::testing::context_for({2}, -8, 8).data;
  context.x_init = x_init;
  if (records != nullptr) context.on_step = [records](const genfw::StepRecord& r) { records->push_back(r); };
  torch::Tensor x = sampler.sample(context);
  if (nfe != nullptr) *nfe = context.nfe;
  return x;
}

/// The error a bad option gives names the plugin and the key.
inline void expect_option_error(const std::string& sampler, const std::map<std::string, genfw::OptionValue>& options,
                                const std::string& key) {
  try {
    genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, sampler, options);
    ADD_FAILURE() << "expected a genfw::Error for " << key;
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sampler '" + sampler + "'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
  }
}

}  // namespace genfw_sde::test
