// Adversarial training of a generator/discriminator pair. Losses:
//   non_saturating: Goodfellow et al. 2014 (§3, the −log D(G(z)) generator loss)
//   hinge:          Lim & Ye 2017; Miyato et al. 2018
//   wgan_gp:        Gulrajani et al. 2017, "Improved Training of Wasserstein GANs"
// n_critic: the batch is split into n_critic chunks and the discriminator takes
// one step per chunk (fresh z for each); when the batch has fewer rows than
// n_critic the whole batch is reused for every step. Then one generator step on
// a full batch of fresh z.
#include "genfw/sdk.hpp"

namespace genfw_adversarial {

using torch::Tensor;

class Adversarial : public genfw::Objective {
 public:
  struct Settings {
    std::string loss = "non_saturating";
    int64_t n_critic = 1;
    double gp_weight = 10.0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .choice("loss", &Settings::loss, {"non_saturating", "hinge", "wgan_gp"}, "adversarial loss")
            .integer("n_critic", &Settings::n_critic,
                     "discriminator updates per generator update (on chunks of the batch)", genfw::at_least(1))
            .real("gp_weight", &Settings::gp_weight, "wgan_gp: weight λ of the gradient penalty",
                  genfw::at_least(0.0));
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }
  Adversarial(const genfw::Options& options, const genfw::BuildContext&) : settings_(bound_options().read(options)) {}

  void train_step(genfw::Model& model, const genfw::Batch& batch, genfw::TrainContext& context) override {
    auto* g = genfw::as<genfw::GeneratorModel>(model);
    auto* d = genfw::as<genfw::DiscriminatorModel>(model);
    GENFW_CHECK(g != nullptr && d != nullptr, "objective 'adversarial' needs a model offering 'generator' and "
                "'discriminator'");
    const int64_t n = batch.x.size(0);
    auto z_options = batch.x.options();
    const int64_t n_critic = settings_.n_critic;
    std::vector<Tensor> chunks = n >= n_critic ? batch.x.chunk(n_critic, 0) : std::vector<Tensor>(n_critic, batch.x);
    // 1. Discriminator / critic steps (fake samples detached: no generator gradient).
    for (const auto& real : chunks) {
      auto z = torch::randn({real.size(0), g->latent_dim()}, z_options);
      auto fake = g->generate(z).detach();
      auto d_real = d->discriminate(real), d_fake = d->discriminate(fake);
      Tensor d_loss;
      if (settings_.loss == "non_saturating") {
        d_loss = torch::softplus(-d_real).mean() + torch::softplus(d_fake).mean();
      } else if (settings_.loss == "hinge") {
        d_loss = torch::relu(1.0 - d_real).mean() + torch::relu(1.0 + d_fake).mean();
      } else {
        auto penalty = gradient_penalty(*d, real, fake);
        context.record("gradient_penalty", penalty.detach());
        d_loss = d_fake.mean() - d_real.mean() + settings_.gp_weight * penalty;
      }
      context.update("discriminator", d_loss);
    }
    // 2. Generator step.
    auto z = torch::randn({n, g->latent_dim()}, z_options);
    auto d_fake = d->discriminate(g->generate(z));
    auto g_loss = settings_.loss == "non_saturating" ? torch::softplus(-d_fake).mean() : -d_fake.mean();
    context.update("generator", g_loss);
  }

 private:
  /// E[(‖∇D(x̂)‖₂ − 1)²] at x̂ uniformly on lines between real and fake samples.
  Tensor gradient_penalty(genfw::DiscriminatorModel& d, const Tensor& real, const Tensor& fake) {
    std::vector<int64_t> shape(real.dim(), 1);
    shape[0] = real.size(0);
    auto eps = torch::rand(shape, real.options());
    auto mixed = (eps * real + (1 - eps) * fake).detach().requires_grad_(true);
    auto out = d.discriminate(mixed);
    auto grad = torch::autograd::grad({out.sum()}, {mixed}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    return (grad.flatten(1).norm(2, 1) - 1.0).pow(2).mean();
  }

  Settings settings_;
};

}  // namespace genfw_adversarial

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_adversarial::Adversarial>("adversarial", genfw::Kind::objective,
                                           "GAN training: non-saturating (Goodfellow 2014), hinge, WGAN-GP "
                                           "(Gulrajani 2017)")
      .require(genfw::Capability::generator)
      .require(genfw::Capability::discriminator);
}
