// dpm_solver: DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for
// Guided Sampling of Diffusion Probabilistic Models", Alg. 2): the multistep
// second-order solver of the diffusion ODE in its data-prediction form, one network
// evaluation per step, on the timesteps of the model's denoiser's VP schedule
// (genfw/denoiser.hpp, vp_schedule: a noise predictor's own, a score model's noise
// levels), guided when guidance_scale > 0. x_θ is the denoiser D(x/α_t, σ_t/α_t).
//
// Symbols, named once (t an integer timestep of the model, ᾱ_t its schedule):
//   α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), λ_t = log(α_t/σ_t)      (half log-SNR)
//   x_θ(x, t) = D(x/α_t, σ_t/α_t)                             (data prediction)
//   h_i = λ_{t_i} − λ_{t_{i−1}},  r_i = h_{i−1}/h_i
//   first-order step (= DDIM):  x_{t_i} = (σ_{t_i}/σ_{t_{i−1}}) x − α_{t_i}(e^{−h_i} − 1) x_θ(x, t_{i−1})
//   2M step: the same with D_i = (1 + 1/(2r_i)) x_θ(t_{i−1}) − 1/(2r_i) x_θ(t_{i−2})
// The steps t_0 = T−1 > … > t_M = 0 are timesteps of the model (the continuous
// choices below rounded to the grid), so every α, σ, λ is the schedule's own; the
// last iterate is x at t = 0 (Lu et al.'s t = 1/N end). NFE = M = `steps`.
#include <genfw/sdk.hpp>

#include <algorithm>
#include <cmath>

namespace {

/// t_0 = T−1 > … > t_M = 0 as distinct timesteps. The continuous time of timestep k
/// is (k + 1)/T (Lu et al.'s discrete-time convention, t ∈ [1/T, 1]); each continuous
/// choice is rounded to the nearest timestep (the network takes integer t).
std::vector<int64_t> solver_timesteps(const std::string& spacing, int64_t steps, const std::vector<double>& alphas_cumprod) {
  const int64_t train_steps = int64_t(alphas_cumprod.size());
  std::vector<int64_t> k(steps + 1);
  if (spacing == "logSNR") {
    // Uniform in λ between λ(T−1) and λ(0); the nearest timestep in λ (λ falls with t).
    std::vector<double> lambda(train_steps);
    for (int64_t t = 0; t < train_steps; ++t)
      lambda[t] = 0.5 * std::log(alphas_cumprod[t] / (1 - alphas_cumprod[t]));
    for (int64_t i = 0; i <= steps; ++i) {
      const double target = lambda[train_steps - 1] + double(i) / double(steps) * (lambda[0] - lambda[train_steps - 1]);
      int64_t best = 0;
      for (int64_t t = 1; t < train_steps; ++t)
        if (std::abs(lambda[t] - target) < std::abs(lambda[best] - target)) best = t;
      k[i] = best;
    }
  } else {
    // time_uniform: t linear from 1 to 1/T; time_quadratic: √t linear (Lu et al.'s
    // code, skip_type "time_quadratic"), denser near the data.
    const double end = 1.0 / double(train_steps);
    for (int64_t i = 0; i <= steps; ++i) {
      const double u = double(i) / double(steps);
      const double t = spacing == "time_uniform" ? 1 + u * (end - 1)
                                                 : std::pow(1 + u * (std::sqrt(end) - 1), 2);
      k[i] = std::clamp<int64_t>(std::llround(t * double(train_steps)) - 1, 0, train_steps - 1);
    }
  }
  // Distinct timesteps inside [0, T−1], ends fixed: where rounding puts two steps on one
  // timestep (λ jumps between the last few timesteps of a linear schedule, and between the
  // first few of a cosine one), move them apart. Step i keeps room for the steps - i after
  // it, so the sequence stays in range (it went past T − 1 for a cosine schedule: NaN).
  k.front() = train_steps - 1;
  for (int64_t i = 1; i <= steps; ++i) k[i] = std::clamp(k[i], steps - i, k[i - 1] - 1);
  return k;
}

class DpmSolverPlusPlus : public genfw::Sampler {
 public:
  struct Settings {
    int64_t steps = 20;
    std::string skip_type = "logSNR";
    bool lower_order_final = true;
    bool clip_sample = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps", &Settings::steps, "number M of solver steps = network evaluations (Lu et al.: 10-25)",
                     genfw::at_least(1))
            .choice("skip_type", &Settings::skip_type, {"logSNR", "time_uniform", "time_quadratic"},
                    "step placement: uniform in λ (Lu et al.'s choice for 2M), uniform in t, or uniform in √t")
            .boolean("lower_order_final", &Settings::lower_order_final,
                     "first-order last step when steps < 10 (Lu et al.'s code: stabler at few steps)")
            .boolean("clip_sample", &Settings::clip_sample,
                     "clip x_θ to the data range [low, high] (\"thresholding\")");
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  DpmSolverPlusPlus(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {}

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the network is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    const std::vector<double> alphas_cumprod = genfw::host_values(genfw::vp_schedule(denoiser->levels()).alphas_cumprod);
    const int64_t train_steps = int64_t(alphas_cumprod.size());
    GENFW_CHECK(settings_.steps < train_steps, "sampler 'dpm_solver': option 'steps' (", settings_.steps,
                ") must be below the model's number of timesteps or noise levels (", train_steps, ")");
    const std::vector<int64_t> t = solver_timesteps(settings_.skip_type, settings_.steps, alphas_cumprod);
    auto alpha = [&](int64_t k) { return std::sqrt(alphas_cumprod[k]); };
    auto sigma = [&](int64_t k) { return std::sqrt(1 - alphas_cumprod[k]); };
    auto lambda = [&](int64_t k) { return std::log(alpha(k) / sigma(k)); };

    torch::Tensor x = context.x_init.defined() ? context.x_init.to(context.device, torch::kFloat32).clone()
                                               : context.normal(context.data.shape);
    torch::Tensor previous_x0;  // x_θ at t_{i−2}
    for (int64_t i = 1; i <= settings_.steps; ++i) {
      const int64_t from = t[i - 1], to = t[i];
      // 1. Data prediction x_θ(x, t_{i−1}) = D(x/α, σ/α).
      torch::Tensor x0 = (*denoiser)(x / alpha(from), sigma(from) / alpha(from));
      if (settings_.clip_sample) x0 = x0.clamp(context.data.low, context.data.high);
      // 2. h_i and, from the second step on, the 2M combination D_i (Alg. 2, lines 5–6).
      const double h = lambda(to) - lambda(from);
      torch::Tensor d = x0;
      const bool final_low_order = settings_.lower_order_final && settings_.steps < 10 && i == settings_.steps;
      if (previous_x0.defined() && !final_low_order) {
        const double r = (lambda(from) - lambda(t[i - 2])) / h;
        d = (1 + 0.5 / r) * x0 - (0.5 / r) * previous_x0;
      }
      // 3. x_{t_i} = (σ_{t_i}/σ_{t_{i−1}}) x − α_{t_i}(e^{−h} − 1) D_i (Alg. 2, lines 3 and 7).
      x = (sigma(to) / sigma(from)) * x - alpha(to) * std::expm1(-h) * d;
      previous_x0 = x0;
      context.report({i - 1, settings_.steps, double(from), x, x0});
    }
    return x;
  }

 private:
  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<DpmSolverPlusPlus>("dpm_solver", genfw::Kind::sampler,
                              "DPM-Solver++(2M), Lu et al. 2022 Alg. 2: multistep 2nd-order data-prediction solver")
      .require(genfw::Capability::score);
}
