// Exact maximum likelihood for density models: loss = −mean log p(x) (nats),
// the change-of-variables objective of NICE/RealNVP (Dinh et al. 2015, 2017).
// log p(x) is a data-space density (plugins/latent_shared/bits_per_dim.hpp), so
// the recorded bits/dim is the published one for quantised images.
#include "genfw/sdk.hpp"

namespace genfw_nll {

class Nll : public genfw::Objective {
 public:
  static genfw::Schema schema() { return genfw::Schema(); }
  Nll(const genfw::Options&, const genfw::BuildContext& context) : data_(context.data) {}

  void train_step(genfw::Model& model, const genfw::Batch& batch, genfw::TrainContext& context) override {
    auto* density = genfw::as<genfw::DensityModel>(model);
    GENFW_CHECK(density != nullptr, "objective 'nll' needs a model offering 'density'");
    auto log_p = density->log_prob(batch.x);
    auto loss = -log_p.mean();
    context.record("bits_per_dim", genfw::bits_per_dim(log_p.detach(), data_).mean());
    context.update("model", loss);
  }

 private:
  genfw::DataInfo data_;
};

}  // namespace genfw_nll

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_nll::Nll>("nll", genfw::Kind::objective,
                           "exact negative log-likelihood -mean log p(x) (change of variables, Dinh et al. 2017)")
      .require(genfw::Capability::density);
}
