// edm: Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
// Generative Models", Algorithm 2: Heun's 2nd-order method on the probability-flow
// ODE dx/dσ = (x − D(x; σ))/σ in VE coordinates (σ(t) = t, s(t) = 1), with the
// ρ-schedule (eq. 5) and optional stochastic churn. D(x; σ) is the model's
// denoiser (genfw/denoiser.hpp): any model with a score serves, guided when
// guidance_scale > 0.
//
// Symbols, named once:
//   t_i = (σ_max^{1/ρ} + i/(N−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i < N;  t_N = 0   (eq. 5)
//   γ_i = min(S_churn/N, √2 − 1) if t_i ∈ [S_tmin, S_tmax], else 0               (Alg. 2, line 4)
//   d = (x − D(x; t))/t
// x_init, when given, is x_0 at σ_max in these VE coordinates.
#include <genfw/sdk.hpp>

#include <cmath>

namespace genfw_sde {
namespace {

class Edm : public genfw::Sampler {
 public:
  struct Settings {
    int64_t steps = 18;
    double sigma_min = 0.0;
    double sigma_max = 0.0;
    double rho = 7.0;
    double S_churn = 0.0;
    double S_tmin = 0.0;
    double S_tmax = 1e6;
    double S_noise = 1.0;
    bool clip_denoised = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps", &Settings::steps,
                     "number N of noise levels t_0..t_{N−1} (NFE = 2N − 1; Karras et al.: 18 on CIFAR-10)",
                     genfw::at_least(2))
            .real("sigma_min", &Settings::sigma_min,
                  "σ_min = t_{N−1}; 0 = the model's smallest noise level (Karras et al.: 0.002)", genfw::at_least(0.0))
            .real("sigma_max", &Settings::sigma_max,
                  "σ_max = t_0; 0 = the model's largest noise level (Karras et al.: 80)", genfw::at_least(0.0))
            .real("rho", &Settings::rho, "ρ of the schedule (eq. 5; 7 in the paper)", genfw::at_least(1e-3))
            .real("S_churn", &Settings::S_churn, "total stochasticity S_churn (0 = the deterministic Alg. 1 with Heun)",
                  genfw::at_least(0.0))
            .real("S_tmin", &Settings::S_tmin, "churn only at t_i ≥ S_tmin", genfw::at_least(0.0))
            .real("S_tmax", &Settings::S_tmax, "churn only at t_i ≤ S_tmax (default 1e6: no upper limit in practice)",
                  genfw::at_least(0.0))
            .real("S_noise", &Settings::S_noise,
                  "std multiplier of the churn noise (Karras et al.: 1.003 on ImageNet)", genfw::at_least(0.0))
            .boolean("clip_denoised", &Settings::clip_denoised,
                     "clip D(x; σ) to the data range [low, high] (not in Alg. 2; what DDIM's clip_sample does to x̂0)");
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  Edm(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {
    const Settings& s = settings_;
    GENFW_CHECK(s.sigma_min == 0 || s.sigma_max == 0 || s.sigma_min < s.sigma_max, options.owner(),
                ": option 'sigma_min' (", s.sigma_min, ") must be below 'sigma_max' (", s.sigma_max, ")");
    GENFW_CHECK(s.S_tmin <= s.S_tmax, options.owner(), ": option 'S_tmin' (", s.S_tmin,
                ") must not exceed 'S_tmax' (", s.S_tmax, ")");
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    const std::vector<double> t = noise_levels(denoiser->levels());
    // Alg. 2 line 1: x_0 ~ N(0, t_0² I).
    torch::Tensor x = context.x_init.defined() ? context.x_init.to(options).clone()
                                               : t[0] * context.normal(context.data.shape);
    // d = (x − D(x; σ))/σ (Alg. 2, lines 7 and 10).
    auto slope = [&](const torch::Tensor& y, double sigma) {
      torch::Tensor denoised = (*denoiser)(y, sigma);
      if (settings_.clip_denoised) denoised = denoised.clamp(context.data.low, context.data.high);
      return (y - denoised) / sigma;
    };
    for (int64_t i = 0; i < settings_.steps; ++i) {
      // Lines 4–6: churn raises the level t_i → t̂ = t_i + γ t_i, adding fresh noise to match.
      const bool churn = settings_.S_churn > 0 && t[i] >= settings_.S_tmin && t[i] <= settings_.S_tmax;
      const double gamma = churn ? std::min(settings_.S_churn / double(settings_.steps), std::sqrt(2.0) - 1) : 0.0;
      const double t_hat = t[i] * (1 + gamma);
      if (gamma > 0) x = x + std::sqrt(t_hat * t_hat - t[i] * t[i]) * settings_.S_noise * context.normal_like(x);
      // Lines 7–8: Euler step t̂ → t_{i+1}.
      const torch::Tensor d = slope(x, t_hat);
      torch::Tensor x_next = x + (t[i + 1] - t_hat) * d;
      // Lines 9–11: Heun's 2nd-order correction, except for the last step to t_N = 0.
      if (t[i + 1] != 0) x_next = x + (t[i + 1] - t_hat) * (0.5 * d + 0.5 * slope(x_next, t[i + 1]));
      context.report({i, settings_.steps, t[i], x_next, x - t_hat * d});  // x0_pred = D(x̂; t̂) = x̂ − t̂·d
      x = x_next;
    }
    return x;
  }

 private:
  // t_0 > … > t_{N−1}, t_N = 0 (eq. 5); unset ends from the model's own noise levels.
  std::vector<double> noise_levels(const genfw::NoiseLevels& model_levels) const {
    const double sigma_min = settings_.sigma_min > 0 ? settings_.sigma_min : model_levels.sigma_min;
    const double sigma_max = settings_.sigma_max > 0 ? settings_.sigma_max : model_levels.sigma_max;
    GENFW_CHECK(sigma_min < sigma_max, "sampler 'edm': sigma_min (", sigma_min, ") must be below sigma_max (",
                sigma_max, "): set both options or neither");
    const int64_t steps = settings_.steps;
    const double rho = settings_.rho;
    const double lo = std::pow(sigma_min, 1 / rho), hi = std::pow(sigma_max, 1 / rho);
    std::vector<double> t(steps + 1, 0.0);
    for (int64_t i = 0; i < steps; ++i) t[i] = std::pow(hi + double(i) / double(steps - 1) * (lo - hi), rho);
    return t;
  }

  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace
}  // namespace genfw_sde

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_sde::Edm>("edm", genfw::Kind::sampler,
                           "Karras et al. 2022 Alg. 2: Heun 2nd order on the ρ-schedule, optional churn "
                           "on the model's denoiser D(x;σ)")
      .require(genfw::Capability::score);
}
