// langevin: unadjusted Langevin dynamics at one noise level (Song & Ermon
// 2019, Eq. 4; Welling & Teh 2011): x ← x + (ε/2)·s(x, σ) + √ε·z, T steps.
// Without annealing it mixes badly between separated modes (the paper's
// Fig. 3b): that is what the annealed sampler fixes. s = the score of the
// model's denoiser (genfw/denoiser.hpp), guided when guidance_scale > 0.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class Langevin : public genfw::Sampler {
 public:
  struct Settings {
    int64_t steps = 1000;
    double step_size = 0.1;
    double sigma = 0.0;
    std::string init = "uniform";
    double init_scale = 1.0;
    int64_t record_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("steps", &Settings::steps, "number T of Langevin steps", genfw::at_least(1))
            .real("step_size", &Settings::step_size, "step size ε", genfw::at_least(0.0))
            .real("sigma", &Settings::sigma, "noise level σ the score is evaluated at; 0 = the model's smallest",
                  genfw::at_least(0.0))
            .choice("init", &Settings::init, {"uniform", "gaussian"},
                    "initial x: uniform over [data.low, data.high], or N(0, init_scale²I)")
            .real("init_scale", &Settings::init_scale, "std of the gaussian initialisation", genfw::at_least(0.0))
            .integer("record_every", &Settings::record_every,
                     "report every k-th step through the step callback (0 = off)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() { return genfw::Schema(bound_options().schema()).merge(genfw::denoiser_schema()); }

  Langevin(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)) {
    GENFW_CHECK(settings_.step_size > 0, options.owner(), ": option 'step_size' must be > 0, got ",
                settings_.step_size);
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    torch::Tensor x;
    if (context.x_init.defined()) {
      x = context.x_init.to(options).clone();
    } else if (settings_.init == "uniform") {
      x = context.data.low + (context.data.high - context.data.low) * context.uniform(context.data.shape);
    } else {
      x = settings_.init_scale * context.normal(context.data.shape);
    }
    const double sigma = settings_.sigma > 0 ? settings_.sigma : denoiser->levels().sigma_min;
    const double noise_scale = std::sqrt(settings_.step_size);
    for (int64_t t = 0; t < settings_.steps; ++t) {
      x = x + 0.5 * settings_.step_size * denoiser->score(x, sigma) + noise_scale * context.normal_like(x);
      if (settings_.record_every > 0 && (t + 1) % settings_.record_every == 0) {
        context.report(genfw::StepRecord{t, settings_.steps, sigma, x, torch::Tensor()});
      }
    }
    return x;  // unclamped: the dynamics target p_σ, whose support is not the data range
  }

 private:
  genfw::Options options_;  // the denoiser reads its own keys from them
  Settings settings_;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::Langevin>("langevin", genfw::Kind::sampler,
                                  "Langevin dynamics x += ε/2·s(x,σ) + √ε·z at one σ (Song & Ermon 2019, Eq. 4)")
      .require(genfw::Capability::score);
}
