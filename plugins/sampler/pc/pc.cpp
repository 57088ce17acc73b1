// pc: predictor–corrector sampling (Song et al. 2021, "Score-Based Generative
// Modeling through SDEs", §4.2, Alg. 1; VE and VP forms Alg. 2/3 with the Langevin
// corrector of Alg. 4/5), as score_sde's pc_sampler: at each t_i the corrector runs
// first, then the predictor steps t_i → t_i − Δt.
//
// Symbols, named once:
//   s(x, t) = ∇x log p_t(x)       the model's denoiser seen through the chosen SDE (genfw::SdeView)
//   f_i, G_i                      the SDE's discrete step over [t − Δt, t] (Sde::discretize)
//   r                             the corrector's target signal-to-noise ratio `snr`
//   α_i = 1 − β_i (VP), 1 (else)  Alg. 5's scale of the Langevin step
//   grid t_i = 1 − i·Δt, Δt = (1 − ε)/N
#include <genfw/sdk.hpp>

#include <cmath>

namespace genfw_sde {
namespace {

class PredictorCorrector : public genfw::Sampler {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("steps", 500, "number N of predictor steps from t = 1 to t = eps", genfw::at_least(1))
        .choice("predictor", "reverse_diffusion", {"reverse_diffusion", "euler_maruyama", "none"},
                "reverse_diffusion (eq. 46, the SDE's own discretisation), euler_maruyama (eq. 6), "
                "none (corrector only: annealed Langevin)")
        .choice("corrector", "langevin", {"langevin", "none"}, "Langevin corrector (Alg. 4/5) or none")
        .real("snr", 0.16, "target signal-to-noise ratio r of the corrector (score_sde: 0.16 VE, 0.01 VP on CIFAR-10)",
              genfw::at_least(0.0))
        .integer("n_corrector", 1, "corrector steps M at each t", genfw::at_least(0))
        .boolean("denoise", true, "return the last predictor step's mean (score_sde's noise_removal)")
        .integer("record_every", 0, "report every k-th step through the step callback (0 = off)",
                 genfw::at_least(0))
        .merge(genfw::sde_schema())
        .merge(genfw::denoiser_schema());
  }

  PredictorCorrector(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options),
        steps_(options.integer("steps")),
        predictor_(options.string("predictor")),
        langevin_(options.string("corrector") == "langevin"),
        snr_(options.real("snr")),
        n_corrector_(options.integer("n_corrector")),
        denoise_(options.flag("denoise")),
        record_every_(options.integer("record_every")),
        eps_(options.real("eps")) {
    genfw::check_sde_options(options);
    GENFW_CHECK(!langevin_ || n_corrector_ == 0 || snr_ > 0, options.owner(),
                ": option 'snr' must be > 0 for the Langevin corrector, got ", snr_);
    GENFW_CHECK(predictor_ != "none" || (langevin_ && n_corrector_ > 0), options.owner(),
                ": option 'predictor' = \"none\" needs the Langevin corrector with 'n_corrector' >= 1");
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    std::unique_ptr<genfw::Sde> sde = genfw::make_sde(options_, *denoiser);
    genfw::SdeView view(*denoiser, *sde);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    torch::Tensor x = context.x_init.defined() ? context.x_init.to(options).clone()
                                               : sde->prior_sample(context.noise, context.data.shape, options);
    torch::Tensor x_mean = x;
    const double dt = (1.0 - eps_) / double(steps_);
    for (int64_t i = 0; i < steps_; ++i) {
      const double t = 1.0 - double(i) * dt;
      const genfw::SdeStep step = sde->discretize(t, dt);
      // 1. Corrector (Alg. 4/5).
      if (langevin_) {
        for (int64_t j = 0; j < n_corrector_; ++j) x = langevin_step(x, t, step, view, x_mean, context);
      }
      // 2. Predictor.
      if (predictor_ == "reverse_diffusion") {
        // Reverse diffusion (eq. 46): x ← x − f_i·x + G_i²·s + G_i·z.
        x_mean = x - step.drift_coefficient * x + step.noise_std * step.noise_std * view.score(x, t);
        x = x_mean + step.noise_std * context.normal_like(x);
      } else if (predictor_ == "euler_maruyama") {
        // Euler–Maruyama on the reverse SDE (eq. 6): x ← x − [f − g² s]·Δt + g·√Δt·z.
        const double g = sde->diffusion(t);
        x_mean = x - (sde->drift(x, t) - g * g * view.score(x, t)) * dt;
        x = x_mean + g * std::sqrt(dt) * context.normal_like(x);
      }
      if (record_every_ > 0 && i % record_every_ == 0) context.report({i, steps_, t, x, x_mean});
    }
    return denoise_ ? x_mean : x;
  }

 private:
  // One Langevin step at t with the step size of Alg. 4/5:
  //   ε = 2α (r‖z‖/‖s‖)²  (batch-mean norms, as score_sde),  x ← x + ε s + √(2ε) z.
  torch::Tensor langevin_step(const torch::Tensor& x, double t, const genfw::SdeStep& step, genfw::SdeView& view,
                              torch::Tensor& x_mean, genfw::SampleContext& context) const {
    const double alpha =
        view.sde().name() == "vp" ? (1 + step.drift_coefficient) * (1 + step.drift_coefficient) : 1.0;  // α_i = 1 − β_i
    auto grad = view.score(x, t);
    auto noise = context.normal_like(x);
    auto grad_norm = grad.reshape({grad.size(0), -1}).norm(2, 1).mean();
    auto noise_norm = noise.reshape({noise.size(0), -1}).norm(2, 1).mean();
    auto step_size = 2 * alpha * (snr_ * noise_norm / grad_norm).pow(2);  // a 0-dim tensor: no host sync
    x_mean = x + step_size * grad;
    return x_mean + (2 * step_size).sqrt() * noise;
  }

  genfw::Options options_;
  int64_t steps_;
  std::string predictor_;
  bool langevin_;
  double snr_;
  int64_t n_corrector_;
  bool denoise_;
  int64_t record_every_;
  double eps_;
};

}  // namespace
}  // namespace genfw_sde

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_sde::PredictorCorrector>("pc", genfw::Kind::sampler,
                                          "predictor–corrector (reverse diffusion / Euler–Maruyama + Langevin with "
                                          "target SNR), Song et al. 2021 Alg. 1-5")
      .require(genfw::Capability::score);
}
