// reverse_sde: the reverse-time SDE of Song et al. 2021 ("Score-Based Generative
// Modeling through SDEs", eq. 6) integrated with the Euler–Maruyama method (App. C;
// score_sde's EulerMaruyamaPredictor), under any of the SDK's SDEs (VE, VP,
// sub-VP; genfw/sde.hpp). The in-tree generalisation of examples/euler_maruyama.
//
// Symbols, named once:
//   f(x, t) = a(t)·x, g(t)     drift and diffusion of the forward SDE
//   s(x, t) = ∇x log p_t(x)    the model's denoiser seen through that SDE (genfw::SdeView)
//   reverse SDE  dx = [f − g² s] dt + g dw̄,   x(1) ~ prior,  t: 1 → ε
//   grid        t_i = 1 − i·Δt,  Δt = (1 − ε)/N,  i = 0..N−1
#include <genfw/sdk.hpp>

#include <cmath>

namespace genfw_sde {
namespace {

class ReverseSde : public genfw::Sampler {
 public:
  struct Settings {
    int64_t steps = 500;
    bool denoise = true;
    int64_t record_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps", &Settings::steps, "number N of Euler–Maruyama steps from t = 1 to t = eps",
                     genfw::at_least(1))
            .boolean("denoise", &Settings::denoise,
                     "return the last step's mean, without its noise (score_sde's noise_removal)")
            .integer("record_every", &Settings::record_every,
                     "report every k-th step through the step callback (0 = off)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() {
    return genfw::Schema(bound_options().schema()).merge(genfw::sde_schema()).merge(genfw::denoiser_schema());
  }

  ReverseSde(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)), eps_(options.real("eps")) {
    genfw::check_sde_options(options);
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    // 1. The denoiser, the SDE (the model fills unset σ/β) and the score under it.
    auto denoiser = genfw::sampling_denoiser(context, options_);
    std::unique_ptr<genfw::Sde> sde = genfw::make_sde(options_, *denoiser);
    genfw::SdeView view(*denoiser, *sde);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);

    // 2. x(1) from the prior, unless the caller gives a start.
    torch::Tensor x = context.x_init.defined() ? context.x_init.to(options).clone()
                                               : sde->prior_sample(context.noise, context.data.shape, options);
    torch::Tensor x_mean = x;
    const double dt = (1.0 - eps_) / double(settings_.steps);
    for (int64_t i = 0; i < settings_.steps; ++i) {
      // 3. t_i on the host: no device sync inside the loop.
      const double t = 1.0 - double(i) * dt;
      const double g = sde->diffusion(t);
      torch::Tensor s = view.score(x, t);
      if (settings_.record_every > 0 && i % settings_.record_every == 0) {
        context.report({i, settings_.steps, t, x, view.denoised_from_score(x, s, t)});
      }
      // 4. One Euler–Maruyama step back in time (eq. 6): x ← x − [f − g² s]·Δt + g·√Δt·z.
      x_mean = x - (sde->drift(x, t) - g * g * s) * dt;
      x = x_mean + g * std::sqrt(dt) * context.normal_like(x);
    }
    return settings_.denoise ? x_mean : x;
  }

 private:
  genfw::Options options_;  // the denoiser and the SDE read their own keys from them
  Settings settings_;
  double eps_;  // sde_schema's end time
};

}  // namespace
}  // namespace genfw_sde

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_sde::ReverseSde>("reverse_sde", genfw::Kind::sampler,
                                  "reverse-time SDE (VE/VP/sub-VP) by Euler–Maruyama, Song et al. 2021 eq. 6")
      .require(genfw::Capability::score);
}
