// Ancestral sampling from the prior of a latent-variable, flow or GAN model:
// z ~ N(0, I) from the context's per-sample noise, then one batched network call (VAE decoder, flow inverse at
// temperature T (Kingma & Dhariwal 2018 §5), or generator). One NFE per call, except an autoregressive
// flow's inverse (MAF: D sequential passes, InvertibleFlow::inverse_passes). An autoregressive
// density model (PixelCNN++) samples itself position by position from the same per-sample noise,
// counting and reporting each network pass.
// Samples are returned as the model gives them in data space (no clamping here).
#include "genfw/sdk.hpp"

namespace genfw_prior {

class Prior : public genfw::Sampler {
 public:
  struct Settings {
    bool mean = true;
    double temperature = 1.0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .boolean("mean", &Settings::mean,
                     "latent-variable models: return the decoder mean instead of a sample of p(x|z)")
            .real("temperature", &Settings::temperature, "density models: std of the base distribution",
                  genfw::at_least(0.0));
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }
  Prior(const genfw::Options& options, const genfw::BuildContext&) : settings_(bound_options().read(options)) {}

  torch::Tensor sample(genfw::SampleContext& context) override {
    GENFW_CHECK(context.model != nullptr, "sampler 'prior': no model");
    const int64_t n = context.num_samples;
    if (auto* autoregressive = genfw::as<genfw::AutoregressiveModel>(*context.model)) {
      return autoregressive->sample_autoregressively(context).reshape(context.batch_shape(n));
    }
    torch::Tensor x;
    int64_t evaluations = 1;
    if (auto* vae = genfw::as<genfw::LatentVariableModel>(*context.model)) {
      x = vae->decode(context.normal({vae->latent_dim()}), settings_.mean);
    } else if (auto* flow = genfw::as<genfw::InvertibleFlow>(*context.model)) {
      x = flow->sample_from_latent(settings_.temperature * context.normal({context.data.dim()}));
      evaluations = flow->inverse_passes();
    } else if (auto* density = genfw::as<genfw::DensityModel>(*context.model)) {
      x = density->sample(n, settings_.temperature);  // no latent to supply: the model draws its own noise
    } else if (auto* gan = genfw::as<genfw::GeneratorModel>(*context.model)) {
      x = gan->generate(context.normal({gan->latent_dim()}));
    } else {
      throw genfw::Error("sampler 'prior' needs a model offering latent-variable, density or generator");
    }
    context.count_evaluations(evaluations);
    x = x.reshape(context.batch_shape(n));
    context.report(genfw::StepRecord{0, 1, 0.0, x, {}});
    return x;
  }

 private:
  Settings settings_;
};

}  // namespace genfw_prior

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_prior::Prior>("prior", genfw::Kind::sampler,
                               "ancestral sampling z ~ N(0, I) -> decoder / flow inverse / generator")
      .require({genfw::Capability::latent_variable, genfw::Capability::density, genfw::Capability::generator});
}
