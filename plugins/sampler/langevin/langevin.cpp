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
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("steps", 1000, "number T of Langevin steps", genfw::at_least(1))
        .real("step_size", 0.1, "step size ε", genfw::at_least(0.0))
        .real("sigma", 0.0, "noise level σ the score is evaluated at; 0 = the model's smallest",
              genfw::at_least(0.0))
        .choice("init", "uniform", {"uniform", "gaussian"},
                "initial x: uniform over [data.low, data.high], or N(0, init_scale²I)")
        .real("init_scale", 1.0, "std of the gaussian initialisation", genfw::at_least(0.0))
        .integer("record_every", 0, "report every k-th step through the step callback (0 = off)",
                 genfw::at_least(0))
        .merge(genfw::denoiser_schema());
  }

  Langevin(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options),
        steps_(options.integer("steps")),
        step_size_(options.real("step_size")),
        sigma_(options.real("sigma")),
        uniform_init_(options.string("init") == "uniform"),
        init_scale_(options.real("init_scale")),
        record_every_(options.integer("record_every")) {
    GENFW_CHECK(step_size_ > 0, options.owner(), ": option 'step_size' must be > 0, got ", step_size_);
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    torch::Tensor x;
    if (context.x_init.defined()) {
      x = context.x_init.to(options).clone();
    } else if (uniform_init_) {
      x = context.data.low + (context.data.high - context.data.low) * context.uniform(context.data.shape);
    } else {
      x = init_scale_ * context.normal(context.data.shape);
    }
    const double sigma = sigma_ > 0 ? sigma_ : denoiser->levels().sigma_min;
    const double noise_scale = std::sqrt(step_size_);
    for (int64_t t = 0; t < steps_; ++t) {
      x = x + 0.5 * step_size_ * denoiser->score(x, sigma) + noise_scale * context.normal_like(x);
      if (record_every_ > 0 && (t + 1) % record_every_ == 0) {
        context.report(genfw::StepRecord{t, steps_, sigma, x, torch::Tensor()});
      }
    }
    return x;  // unclamped: the dynamics target p_σ, whose support is not the data range
  }

 private:
  genfw::Options options_;
  int64_t steps_;
  double step_size_;
  double sigma_;
  bool uniform_init_;
  double init_scale_;
  int64_t record_every_;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::Langevin>("langevin", genfw::Kind::sampler,
                                  "Langevin dynamics x += ε/2·s(x,σ) + √ε·z at one σ (Song & Ermon 2019, Eq. 4)")
      .require(genfw::Capability::score);
}
