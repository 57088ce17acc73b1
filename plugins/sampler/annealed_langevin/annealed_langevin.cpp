// annealed_langevin: Algorithm 1 of Song & Ermon 2019. For σ_1 > … > σ_L:
//   α_i = ε·σ_i²/σ_L²;  T times: x ← x + (α_i/2)·s(x, σ_i) + √α_i·z.
// Optional final denoising step x + σ_L²·s(x, σ_L) (Tweedie; Song & Ermon 2020,
// NCSNv2, and Jolicoeur-Martineau et al. 2020). s = the score of the model's
// denoiser (genfw/denoiser.hpp), guided when guidance_scale > 0.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class AnnealedLangevin : public genfw::Sampler {
 public:
  struct Settings {
    int64_t steps_per_level = 100;
    double step_size = 2e-5;
    std::string init = "uniform";
    double init_scale = 1.0;
    bool denoise = false;
    std::vector<double> sigmas = {};
    int64_t record_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps_per_level", &Settings::steps_per_level, "Langevin steps T at each noise level",
                     genfw::at_least(1))
            .real("step_size", &Settings::step_size, "ε: the step at level i is α_i = ε·σ_i²/σ_L²",
                  genfw::at_least(0.0))
            .choice("init", &Settings::init, {"uniform", "gaussian"},
                    "initial x: uniform over [data.low, data.high], or N(0, init_scale²I)")
            .real("init_scale", &Settings::init_scale, "std of the gaussian initialisation", genfw::at_least(0.0))
            .boolean("denoise", &Settings::denoise, "finish with x + σ_L²·s(x, σ_L) (one more evaluation)")
            .reals("sigmas", &Settings::sigmas, "noise levels, descending; empty = the model's noise_levels()",
                   genfw::at_least(0.0))
            .integer("record_every", &Settings::record_every,
                     "report every k-th step through the step callback (0 = off)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  AnnealedLangevin(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {
    const auto& owner = options.owner();
    const auto& sigmas = settings_.sigmas;
    GENFW_CHECK(settings_.step_size > 0, owner, ": option 'step_size' must be > 0, got ", settings_.step_size);
    for (size_t i = 0; i < sigmas.size(); ++i) {
      GENFW_CHECK(sigmas[i] > 0, owner, ": option 'sigmas' must be positive, got ", sigmas[i]);
      GENFW_CHECK(i == 0 || sigmas[i] < sigmas[i - 1], owner,
                  ": option 'sigmas' must be strictly descending, got ", sigmas[i - 1], " then ", sigmas[i]);
    }
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // no autograd bookkeeping: the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    const std::vector<double> sigmas =
        settings_.sigmas.empty() ? genfw::host_values(denoiser->levels().sigmas) : settings_.sigmas;
    torch::Tensor x;
    if (context.x_init.defined()) {
      x = context.x_init.to(options).clone();
    } else if (settings_.init == "uniform") {
      x = context.data.low + (context.data.high - context.data.low) * context.uniform(context.data.shape);
    } else {
      x = settings_.init_scale * context.normal(context.data.shape);
    }
    const double sigma_last = sigmas.back();
    const int64_t levels = int64_t(sigmas.size());
    const int64_t total = levels * settings_.steps_per_level;
    for (int64_t i = 0; i < levels; ++i) {
      // 1. step size for this level, α_i = ε σ_i² / σ_L²
      const double sigma = sigmas[i];
      const double alpha = settings_.step_size * (sigma / sigma_last) * (sigma / sigma_last);
      for (int64_t t = 0; t < settings_.steps_per_level; ++t) {
        // 2. Langevin step with the score of p_{σ_i}
        auto s = denoiser->score(x, sigma);
        const int64_t step = i * settings_.steps_per_level + t;
        const bool record = settings_.record_every > 0 && (step + 1) % settings_.record_every == 0;
        // x0_pred: Tweedie's denoised estimate x + σ²∇log p_σ(x) of the iterate the score was taken at.
        torch::Tensor denoised = record ? x + sigma * sigma * s : torch::Tensor();
        // x + α/2·s + √α·z in two kernels instead of four (a per-step cost that shows on small models)
        x = torch::add(x, s, 0.5 * alpha).add_(context.normal_like(x), std::sqrt(alpha));
        if (record) context.report(genfw::StepRecord{step, total, sigma, x, denoised});
      }
    }
    if (settings_.denoise) {
      // 3. final denoising, x + σ_L² s(x, σ_L)
      x = (*denoiser)(x, sigma_last);  // D(x, σ_L) = x + σ_L² s(x, σ_L)
    }
    return x;  // unclamped, as Algorithm 1 (the reference code clamps only for display)
  }

 private:
  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::AnnealedLangevin>("annealed_langevin", genfw::Kind::sampler,
                                          "annealed Langevin dynamics, Algorithm 1 of Song & Ermon 2019")
      .require(genfw::Capability::score);
}
