// Exact noise predictor of an isotropic Gaussian mixture under a VP β schedule:
// ε(x_t, t) = −√(1−ᾱ_t) ∇ log p_t(x_t), p_t = law of √ᾱ_t X + √(1−ᾱ_t) ε
// (Ho et al. 2020 eq. 4; the ε ↔ score identity of Song et al. 2021 / Vincent 2011).
// Ground truth for DDPM/DDIM samplers: sampler error is all that is left.
#include <genfw/gaussian_mixture.hpp>
#include <genfw/sdk.hpp>

namespace {

using genfw::DiffusionSettings;

class AnalyticGmmEps : public genfw::Model, public genfw::NoisePredictor {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .matrix("means", {{-5.0, -5.0}, {5.0, 5.0}}, "component means μ_k, one row each")
        .reals("weights", {0.2, 0.8}, "mixture weights (normalised)", genfw::at_least(0.0))
        .reals("stds", {1.0, 1.0}, "isotropic std of each component", genfw::at_least(1e-12))
        .merge(genfw::diffusion_schema());
  }

  AnalyticGmmEps(const genfw::Options& options, const genfw::BuildContext& context)
      : mixture_(genfw::GaussianMixture::from_options(options.matrix("means"),
                                                      options.reals("weights"),
                                                      options.reals("stds"))),
        settings_(DiffusionSettings::from_options(options)) {
    GENFW_CHECK(context.data.shape.empty() || context.data.dim() == mixture_.dim(), options.owner(),
                ": option 'means' has dimension ", mixture_.dim(), " but the data has ",
                context.data.dim(), " values per sample");
    // Keep float64 copies of the schedule; nothing trainable, nothing to move.
  }

  torch::Tensor predict(const torch::Tensor& x_t, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    auto flat = x_t.reshape({x_t.size(0), -1});
    // A fractional t (a denoiser's interpolated time) answers at the σ it interpolates.
    auto alpha_bar = genfw::alpha_bar_at(settings_.schedule, t.to(torch::kCPU), torch::empty({0}, torch::kFloat64));
    auto score = mixture_.score_vp(flat.to(torch::kFloat64), alpha_bar);
    auto ab = alpha_bar.to(score.device());
    auto eps = genfw::eps_from_score(score, ab);
    torch::Tensor out;
    switch (settings_.prediction_type) {
      case genfw::PredictionType::epsilon: out = eps; break;
      case genfw::PredictionType::sample:
        out = genfw::x0_from_eps(flat.to(torch::kFloat64), eps, ab);
        break;
      case genfw::PredictionType::v_prediction:
        out = genfw::v_from_eps(genfw::x0_from_eps(flat.to(torch::kFloat64), eps, ab), eps, ab);
        break;
    }
    return out.to(x_t.scalar_type()).reshape(x_t.sizes());
  }
  const genfw::DiffusionSchedule& schedule() const override { return settings_.schedule; }
  genfw::PredictionType prediction_type() const override { return settings_.prediction_type; }

 private:
  genfw::GaussianMixture mixture_;
  DiffusionSettings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<AnalyticGmmEps>("analytic_gmm_eps", genfw::Kind::model,
                           "exact ε = −√(1−ᾱ_t)∇log p_t of a Gaussian mixture under a VP β schedule "
                           "(Ho et al. 2020)");
}
