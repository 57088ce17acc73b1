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
  struct Settings {
    int64_t steps = 500;
    std::string predictor = "reverse_diffusion";
    std::string corrector = "langevin";
    double snr = 0.16;
    int64_t n_corrector = 1;
    bool denoise = true;
    int64_t record_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps", &Settings::steps, "number N of predictor steps from t = 1 to t = eps",
                     genfw::at_least(1))
            .choice("predictor", &Settings::predictor, {"reverse_diffusion", "euler_maruyama", "none"},
                    "reverse_diffusion (eq. 46, the SDE's own discretisation), euler_maruyama (eq. 6), "
                    "none (corrector only: annealed Langevin)")
            .choice("corrector", &Settings::corrector, {"langevin", "none"}, "Langevin corrector (Alg. 4/5) or none")
            .real("snr", &Settings::snr,
                  "target signal-to-noise ratio r of the corrector (score_sde: 0.16 VE, 0.01 VP on CIFAR-10)",
                  genfw::at_least(0.0))
            .integer("n_corrector", &Settings::n_corrector, "corrector steps M at each t", genfw::at_least(0))
            .boolean("denoise", &Settings::denoise, "return the last predictor step's mean (score_sde's noise_removal)")
            .integer("record_every", &Settings::record_every,
                     "report every k-th step through the step callback (0 = off)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() {
    return genfw::Schema(bound_options().schema()).merge(genfw::sde_schema()).merge(genfw::denoiser_schema());
  }

  PredictorCorrector(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options),
        settings_(bound_options().read(options)),
        langevin_(settings_.corrector == "langevin"),
        eps_(options.real("eps")) {
    genfw::check_sde_options(options);
    GENFW_CHECK(!langevin_ || settings_.n_corrector == 0 || settings_.snr > 0, options.owner(),
                ": option 'snr' must be > 0 for the Langevin corrector, got ", settings_.snr);
    GENFW_CHECK(settings_.predictor != "none" || (langevin_ && settings_.n_corrector > 0), options.owner(),
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
    const double dt = (1.0 - eps_) / double(settings_.steps);
    for (int64_t i = 0; i < settings_.steps; ++i) {
      const double t = 1.0 - double(i) * dt;
      const genfw::SdeStep step = sde->discretize(t, dt);
      // 1. Corrector (Alg. 4/5).
      if (langevin_) {
        for (int64_t j = 0; j < settings_.n_corrector; ++j) x = langevin_step(x, t, step, view, x_mean, context);
      }
      // 2. Predictor.
      if (settings_.predictor == "reverse_diffusion") {
        // Reverse diffusion (eq. 46): x ← x − f_i·x + G_i²·s + G_i·z.
        x_mean = x - step.drift_coefficient * x + step.noise_std * step.noise_std * view.score(x, t);
        x = x_mean + step.noise_std * context.normal_like(x);
      } else if (settings_.predictor == "euler_maruyama") {
        // Euler–Maruyama on the reverse SDE (eq. 6): x ← x − [f − g² s]·Δt + g·√Δt·z.
        const double g = sde->diffusion(t);
        x_mean = x - (sde->drift(x, t) - g * g * view.score(x, t)) * dt;
        x = x_mean + g * std::sqrt(dt) * context.normal_like(x);
      }
      if (settings_.record_every > 0 && i % settings_.record_every == 0) {
        context.report({i, settings_.steps, t, x, x_mean});
      }
    }
    return settings_.denoise ? x_mean : x;
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
    auto step_size = 2 * alpha * (settings_.snr * noise_norm / grad_norm).pow(2);  // a 0-dim tensor: no host sync
    x_mean = x + step_size * grad;
    return x_mean + (2 * step_size).sqrt() * noise;
  }

  genfw::Options options_;  // the denoiser and the SDE read their own keys from them
  Settings settings_;
  bool langevin_;  // corrector = "langevin"
  double eps_;     // sde_schema's end time
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
