// Ancestral sampling of a DDPM (Ho et al. 2020, Alg. 2): for t = T−1..0,
// x_{t−1} = μ̃_t(x_t, x̂0) + σ_t z, with μ̃ the posterior mean of q(x_{t−1} | x_t, x0)
// at the predicted x̂0 (optionally clipped to the data range, as in the original
// code), σ_t² = β̃_t ("fixed_small") or β_t ("fixed_large"), and no noise at t = 0.
// ε̃ is the model's denoiser at the VP point (genfw/denoiser.hpp; guided when
// guidance_scale > 0) and ᾱ_t its levels' VP schedule (vp_schedule): a noise
// predictor's own β schedule, or a score model's noise levels as timesteps.
#include <genfw/sdk.hpp>

namespace {

class DdpmSampler : public genfw::Sampler {
 public:
  struct Settings {
    std::string variance = "fixed_small";
    bool clip_sample = true;
    int64_t record_x0_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .choice("variance", &Settings::variance, {"fixed_small", "fixed_large"},
                    "reverse-step variance: β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t) or β_t (Ho et al. §3.2)")
            .boolean("clip_sample", &Settings::clip_sample, "clip the predicted x0 to the data range [low, high]")
            .integer("record_x0_every", &Settings::record_x0_every,
                     "attach the predicted x0 to every k-th step record (0 = never)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  DdpmSampler(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {}

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the network is only evaluated (classifier guidance differentiates locally)
    auto denoiser = genfw::sampling_denoiser(context, options_);
    const genfw::DiffusionSchedule s = genfw::vp_schedule(denoiser->levels());
    const int64_t steps = s.num_steps();
    // The schedule on the host, read once: the loop does no per-step .item().
    using genfw::host_values;
    const auto alphas_cumprod = host_values(s.alphas_cumprod), coef1 = host_values(s.posterior_mean_coef1),
               coef2 = host_values(s.posterior_mean_coef2),
               variances = host_values(settings_.variance == "fixed_large" ? s.betas : s.posterior_variance);
    auto x = context.x_init.defined()
                 ? context.x_init.to(context.device, torch::kFloat32)
                 : context.normal(context.data.shape);
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t n = x.size(0);
      // 1. ε̃(x_t, t) with guidance, 2. x̂0 from it, clipped if asked.
      auto eps = denoiser->eps_vp(x, alphas_cumprod[size_t(t)]);
      auto alpha_bar = torch::full({n}, alphas_cumprod[size_t(t)], x.options());
      auto x0 = genfw::x0_from_eps(x, eps, alpha_bar);
      if (settings_.clip_sample) x0 = x0.clamp(context.data.low, context.data.high);
      // 3. Posterior mean μ̃_t = c1 x̂0 + c2 x_t, 4. add noise except at t = 0.
      auto mean = coef1[size_t(t)] * x0 + coef2[size_t(t)] * x;
      if (t > 0) {
        x = mean + std::sqrt(variances[size_t(t)]) * context.normal_like(x);
      } else {
        x = mean;
      }
      genfw::StepRecord record;
      record.index = steps - 1 - t;
      record.total = steps;
      record.noise_level = double(t);
      record.x = x;
      if (settings_.record_x0_every > 0 && record.index % settings_.record_x0_every == 0) record.x0_pred = x0;
      context.report(record);
    }
    return x;  // not clamped: Alg. 2 returns x_0 as is
  }

 private:
  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<DdpmSampler>("ddpm", genfw::Kind::sampler,
                        "DDPM ancestral sampling, Ho et al. 2020 Alg. 2 (+ classifier-free / "
                        "classifier guidance)")
      .require(genfw::Capability::score);
}
