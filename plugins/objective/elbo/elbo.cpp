// Negative evidence lower bound (Kingma & Welling 2014) with the
// reparameterisation trick and a β weight on the KL term (Higgins et al. 2017),
// optionally warmed up linearly (Bowman et al. 2016; Sønderby et al. 2016).
#include <algorithm>

#include "genfw/sdk.hpp"

namespace genfw_elbo {

class Elbo : public genfw::Objective {
 public:
  struct Settings {
    double beta = 1.0;
    int64_t kl_warmup_steps = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .real("beta", &Settings::beta, "weight of KL(q(z|x) || N(0, I))", genfw::at_least(0.0))
            .integer("kl_warmup_steps", &Settings::kl_warmup_steps,
                     "steps over which the KL weight ramps linearly from 0 to beta (0 = off)", genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }
  Elbo(const genfw::Options& options, const genfw::BuildContext&) : settings_(bound_options().read(options)) {}

  void train_step(genfw::Model& model, const genfw::Batch& batch, genfw::TrainContext& context) override {
    auto* vae = genfw::as<genfw::LatentVariableModel>(model);
    GENFW_CHECK(vae != nullptr, "objective 'elbo' needs a model offering 'latent-variable'");
    // 1. q(z|x) and one reparameterised sample z = μ + σ·ε.
    genfw::Posterior q = vae->encode(batch.x);
    auto z = q.mean + torch::exp(0.5 * q.log_var) * torch::randn_like(q.mean);
    // 2. E_q[log p(x|z)] (one-sample estimate) and the analytic KL to N(0, I).
    auto reconstruction = vae->decoder_log_likelihood(batch.x, z).mean();
    auto kl = (0.5 * (q.mean.pow(2) + torch::exp(q.log_var) - 1.0 - q.log_var)).sum(-1).mean();
    // 3. −ELBO with the (warmed-up) β.
    double beta = settings_.beta;
    const int64_t warmup = settings_.kl_warmup_steps;
    if (warmup > 0) beta *= std::min(1.0, static_cast<double>(context.step() + 1) / static_cast<double>(warmup));
    context.record("kl", kl.detach());
    context.record("reconstruction", reconstruction.detach());
    context.update("model", -reconstruction + beta * kl);
  }

 private:
  Settings settings_;
};

}  // namespace genfw_elbo

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_elbo::Elbo>("elbo", genfw::Kind::objective,
                             "negative ELBO with reparameterisation (Kingma & Welling 2014), beta-weighted KL")
      .require(genfw::Capability::latent_variable);
}
