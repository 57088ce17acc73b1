// euler_maruyama: the reverse-time variance-exploding SDE integrated with the
// Euler–Maruyama method (Song et al. 2021, "Score-Based Generative Modeling
// through Stochastic Differential Equations", Eq. 6 and App. C; score_sde's
// EulerMaruyamaPredictor). A plugin built outside the framework's tree against
// the installed SDK; it runs on every model with a score, learned (NCSN,
// score_mlp) or derived from a noise predictor (DDPM), through the model's denoiser
// (genfw/denoiser.hpp), guided when guidance_scale > 0.
//
// Symbols, named once:
//   σ(t) = σ_min (σ_max/σ_min)^t, t ∈ [0, 1]         the VE noise level
//   g(t)² = dσ²/dt = 2 σ(t)² log(σ_max/σ_min)         squared diffusion coefficient
//   reverse SDE  dx = −g(t)² ∇x log p_t(x) dt + g(t) dw̄,   x(1) ~ N(0, σ_max² I)
#include <genfw/sdk.hpp>

#include <cmath>
#include <vector>

namespace genfw_examples {
namespace {

class EulerMaruyama : public genfw::Sampler {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("steps", 500, "number N of Euler–Maruyama steps from t = 1 to t = 1/N", genfw::at_least(1))
        .real("sigma_max", 0.0, "σ_max = σ(1), the prior's std; 0 = the model's largest noise level",
              genfw::at_least(0.0))
        .real("sigma_min", 0.0, "σ_min = σ(0); 0 = the model's smallest noise level", genfw::at_least(0.0))
        .boolean("denoise", true, "return the last step's mean, without its noise (score_sde's noise_removal)")
        .integer("record_every", 0, "report every k-th step through the step callback (0 = off)",
                 genfw::at_least(0))
        .merge(genfw::denoiser_schema());
  }

  EulerMaruyama(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options),
        steps_(options.integer("steps")),
        sigma_max_(options.real("sigma_max")),
        sigma_min_(options.real("sigma_min")),
        denoise_(options.flag("denoise")),
        record_every_(options.integer("record_every")) {
    GENFW_CHECK(sigma_max_ == 0 || sigma_min_ == 0 || sigma_min_ < sigma_max_, options.owner(),
                ": option 'sigma_min' (", sigma_min_, ") must be below 'sigma_max' (", sigma_max_, ")");
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);

    // 1. The σ range: the options, or the levels the model was trained for.
    const double sigma_max = sigma_max_ > 0 ? sigma_max_ : denoiser->levels().sigma_max;
    const double sigma_min = sigma_min_ > 0 ? sigma_min_ : denoiser->levels().sigma_min;
    GENFW_CHECK(sigma_min < sigma_max, "sigma_min (", sigma_min, ") must be below sigma_max (", sigma_max,
                "): set both options or neither");
    const double log_ratio = std::log(sigma_max / sigma_min);
    const double dt = 1.0 / double(steps_);

    // 2. x(1) from the prior N(0, σ_max² I), unless the caller gives a start.
    torch::Tensor x = context.x_init.defined() ? context.x_init.to(options).clone()
                                               : sigma_max * context.normal(context.data.shape);
    torch::Tensor x_mean = x;
    for (int64_t i = 0; i < steps_; ++i) {
      // 3. t_i = 1 − i/N on the host: no device sync inside the loop.
      const double t = 1.0 - double(i) * dt;
      const double sigma = sigma_min * std::pow(sigma_max / sigma_min, t);
      const double g2 = 2.0 * sigma * sigma * log_ratio;
      torch::Tensor s = denoiser->score(x, sigma);
      if (record_every_ > 0 && i % record_every_ == 0) {
        // Tweedie: E[x0 | x] = x + σ² ∇ log p_σ(x), free since s is at hand.
        context.report(genfw::StepRecord{i, steps_, sigma, x, x + sigma * sigma * s});
      }
      // 4. One step back in time: drift −g²·s·(−dt), diffusion g·√dt·z.
      x_mean = x + g2 * dt * s;
      x = x_mean + std::sqrt(g2 * dt) * context.normal_like(x);
    }
    return denoise_ ? x_mean : x;
  }

 private:
  genfw::Options options_;
  int64_t steps_;
  double sigma_max_;
  double sigma_min_;
  bool denoise_;
  int64_t record_every_;
};

}  // namespace
}  // namespace genfw_examples

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_examples::EulerMaruyama>(
          "euler_maruyama", genfw::Kind::sampler,
          "reverse-time VE SDE, Euler–Maruyama: x += g²·s(x,σ(t))·Δt + g·√Δt·z (Song et al. 2021, Eq. 6)")
      .require(genfw::Capability::score);
}
