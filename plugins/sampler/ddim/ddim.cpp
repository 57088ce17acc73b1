// DDIM (Song et al. 2021, eq. 12): on a sub-sequence τ of the training timesteps,
// x_{τ'} = √ᾱ_{τ'} x̂0 + √(1−ᾱ_{τ'}−σ²) ε̃ + σ z, σ = η √((1−ᾱ_{τ'})/(1−ᾱ_τ)) √(1−ᾱ_τ/ᾱ_{τ'}),
// τ' the next element of τ (ᾱ = 1 after the last when set_alpha_to_one).
// Timestep spacings as diffusers' DDIMScheduler.set_timesteps; η = 0 is the
// deterministic probability-flow-like map, which `invert` runs backwards
// (x0 → x_T, "DDIM inversion", Song et al. 2021 §4.3/5.4). ε̃ is the model's
// denoiser at the VP point (genfw/denoiser.hpp; guided when guidance_scale > 0),
// ᾱ its levels' VP schedule (vp_schedule): a noise predictor's own, or a score
// model's noise levels as timesteps.
#include <genfw/sdk.hpp>

#include <cmath>

namespace {

/// τ in sampling order (descending), as diffusers' DDIMScheduler.set_timesteps.
std::vector<int64_t> ddim_timesteps(int64_t train_steps, int64_t steps, const std::string& spacing,
                                    int64_t offset) {
  std::vector<int64_t> t;
  if (spacing == "leading") {
    const int64_t ratio = train_steps / steps;
    for (int64_t i = steps - 1; i >= 0; --i) t.push_back(i * ratio + offset);
  } else if (spacing == "trailing") {
    const double ratio = double(train_steps) / double(steps);
    for (int64_t i = 0; i < steps; ++i) {
      t.push_back(int64_t(std::nearbyint(train_steps - i * ratio)) - 1);  // np.round: half to even
    }
  } else {  // linspace
    for (int64_t i = steps - 1; i >= 0; --i) {
      const double v = steps == 1 ? 0.0 : double(i) * double(train_steps - 1) / double(steps - 1);
      t.push_back(int64_t(std::nearbyint(v)));
    }
  }
  return t;
}

class DdimSampler : public genfw::Sampler {
 public:
  struct Settings {
    int64_t num_inference_steps = 50;
    double eta = 0.0;
    std::string timestep_spacing = "leading";
    int64_t steps_offset = 0;
    bool set_alpha_to_one = true;
    bool clip_sample = false;
    bool clipped_model_output = true;
    bool invert = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("num_inference_steps", &Settings::num_inference_steps, "number of DDIM steps",
                     genfw::at_least(1))
            .real("eta", &Settings::eta, "η: 0 = deterministic DDIM, 1 = DDPM-like posterior variance",
                  genfw::at_least(0.0))
            .choice("timestep_spacing", &Settings::timestep_spacing, {"leading", "trailing", "linspace"},
                    "how τ is spread over 0..T−1 (diffusers' DDIMScheduler)")
            .integer("steps_offset", &Settings::steps_offset, "added to 'leading' timesteps", genfw::at_least(0))
            .boolean("set_alpha_to_one", &Settings::set_alpha_to_one, "ᾱ after the last step is 1 (else ᾱ_0)")
            .boolean("clip_sample", &Settings::clip_sample, "clip the predicted x0 to the data range [low, high]")
            .boolean("clipped_model_output", &Settings::clipped_model_output,
                     "with clip_sample: step with the ε of the clipped x0 (diffusers' use_clipped_model_output = "
                     "True); false steps with the network's ε, as diffusers' DDIMPipeline does by default")
            .boolean("invert", &Settings::invert, "run DDIM (η = 0) backwards: encode context.x_init (x0) into x_T");
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  DdimSampler(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {
    GENFW_CHECK(!settings_.invert || settings_.eta == 0.0, options.owner(),
                ": option 'invert' needs 'eta' = 0 (only the deterministic map inverts), got eta = ",
                settings_.eta);
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the network is only evaluated (classifier guidance differentiates locally)
    auto denoiser = genfw::sampling_denoiser(context, options_);
    const genfw::DiffusionSchedule s = genfw::vp_schedule(denoiser->levels());
    const int64_t train_steps = s.num_steps();
    const int64_t steps = settings_.num_inference_steps;
    GENFW_CHECK(steps <= train_steps, "sampler 'ddim': option 'num_inference_steps' (", steps,
                ") exceeds the model's number of timesteps or noise levels (", train_steps, ")");
    const auto tau = ddim_timesteps(train_steps, steps, settings_.timestep_spacing, settings_.steps_offset);
    for (int64_t t : tau) {
      GENFW_CHECK(t >= 0 && t < train_steps, "sampler 'ddim': timestep ", t,
                  " out of range [0, ", train_steps, "); lower 'steps_offset'");
    }
    const std::vector<double> alphas_cumprod = genfw::host_values(s.alphas_cumprod);
    const double final_alpha = settings_.set_alpha_to_one ? 1.0 : alphas_cumprod[0];
    auto alpha_bar_of = [&](int64_t t) { return t < 0 ? final_alpha : alphas_cumprod[size_t(t)]; };

    torch::Tensor x;
    if (settings_.invert) {
      GENFW_CHECK(context.x_init.defined(), "sampler 'ddim': option 'invert' needs x_init (x0)");
      x = context.x_init.to(context.device, torch::kFloat32);
    } else {
      x = context.x_init.defined() ? context.x_init.to(context.device, torch::kFloat32)
                                   : context.normal(context.data.shape);
    }
    const int64_t n_steps = int64_t(tau.size());
    for (int64_t i = 0; i < n_steps; ++i) {
      // 1. From level `from` (where x lives) to level `to`; the network is evaluated at
      //    `t_eval`. Sampling: τ_i → τ_{i+1} (the next element, not τ_i − T/steps).
      //    Inversion walks τ reversed; its first step starts from x0 (level "−1",
      //    ᾱ = final) and evaluates the network at the smallest τ.
      int64_t from, to, t_eval;
      if (!settings_.invert) {
        from = tau[i];
        to = i + 1 < n_steps ? tau[i + 1] : -1;
        t_eval = from;
      } else {
        to = tau[n_steps - 1 - i];
        from = i == 0 ? -1 : tau[n_steps - i];
        t_eval = i == 0 ? to : from;
      }
      const double a_from = alpha_bar_of(from), a_to = alpha_bar_of(to);
      // 2. ε̃ and x̂0 (clipped x̂0 gives back a consistent ε unless clipped_model_output is off).
      auto eps = denoiser->eps_vp(x, alpha_bar_of(t_eval));
      auto x0 = (x - std::sqrt(1 - a_from) * eps) / std::sqrt(a_from);
      if (settings_.clip_sample) {
        x0 = x0.clamp(context.data.low, context.data.high);
        if (settings_.clipped_model_output && a_from < 1) eps = (x - std::sqrt(a_from) * x0) / std::sqrt(1 - a_from);
      }
      // 3. σ (eq. 16) and the step (eq. 12).
      double sigma = 0.0;
      if (!settings_.invert && settings_.eta > 0) {
        sigma = settings_.eta * std::sqrt((1 - a_to) / (1 - a_from) * (1 - a_from / a_to));
      }
      x = std::sqrt(a_to) * x0 + std::sqrt(std::max(0.0, 1 - a_to - sigma * sigma)) * eps;
      if (sigma > 0) x = x + sigma * context.normal_like(x);
      genfw::StepRecord record;
      record.index = i;
      record.total = n_steps;
      record.noise_level = double(t_eval);
      record.x = x;
      record.x0_pred = x0;
      context.report(record);
    }
    return x;  // not clamped (eq. 12 returns x_0 as is; clip_sample clips x̂0 only)
  }

 private:
  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<DdimSampler>("ddim", genfw::Kind::sampler,
                        "DDIM sampling and inversion, Song et al. 2021 eq. 12 (+ classifier-free / "
                        "classifier guidance)")
      .require(genfw::Capability::score);
}
