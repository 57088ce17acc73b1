// Ancestral sampling from the prior of a latent-variable, flow or GAN model:
// z ~ N(0, I) then one batched network call (VAE decoder, flow inverse at
// temperature T (Kingma & Dhariwal 2018 §5), or generator). One NFE per call.
// Samples are returned as the model gives them in data space (no clamping here).
#include "genfw/sdk.hpp"

namespace genfw_prior {

class Prior : public genfw::Sampler {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .boolean("mean", true, "latent-variable models: return the decoder mean instead of a sample of p(x|z)")
        .real("temperature", 1.0, "density models: std of the base distribution", genfw::at_least(0.0));
  }
  Prior(const genfw::Options& options, const genfw::BuildContext&)
      : mean_(options.flag("mean")), temperature_(options.real("temperature")) {}

  torch::Tensor sample(genfw::SampleContext& context) override {
    GENFW_CHECK(context.model != nullptr, "sampler 'prior': no model");
    const int64_t n = context.num_samples;
    auto z_options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    torch::Tensor x;
    if (auto* vae = genfw::as<genfw::LatentVariableModel>(*context.model)) {
      x = vae->decode(torch::randn({n, vae->latent_dim()}, z_options), mean_);
    } else if (auto* flow = genfw::as<genfw::DensityModel>(*context.model)) {
      x = flow->sample(n, temperature_);
    } else if (auto* gan = genfw::as<genfw::GeneratorModel>(*context.model)) {
      x = gan->generate(torch::randn({n, gan->latent_dim()}, z_options));
    } else {
      throw genfw::Error("sampler 'prior' needs a model offering latent-variable, density or generator");
    }
    context.nfe += 1;
    x = x.reshape(context.batch_shape(n));
    context.report(genfw::StepRecord{0, 1, 0.0, x, {}});
    return x;
  }

 private:
  bool mean_;
  double temperature_;
};

}  // namespace genfw_prior

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_prior::Prior>("prior", genfw::Kind::sampler,
                               "ancestral sampling z ~ N(0, I) -> decoder / flow inverse / generator")
      .require({genfw::Capability::latent_variable, genfw::Capability::density, genfw::Capability::generator});
}
