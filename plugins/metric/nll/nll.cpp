/// Test-set negative log-likelihood in bits/dim from whatever the model offers:
///   density          exact log p(x)                       (e.g. RealNVP, Dinh et al. 2017)
///   latent_variable  IWAE bound L_k                       (Burda et al. 2016)
///   noise_prediction DDPM variational bound L_vlb         (Ho et al. 2020; Nichol & Dhariwal 2021)
/// Units follow plugins/latent_shared/bits_per_dim.hpp: a data-space density is
/// converted with the quantisation-bin offset for discrete data; the DDPM bound
/// with its discretized decoder is already on a probability mass.
#include <cmath>
#include <sstream>

#include "genfw/sdk.hpp"

#include "ddpm_vlb.hpp"

namespace {

using namespace genfw;

class Nll : public Metric {
 public:
  static Schema schema() {
    return Schema()
        .choice("estimator", "auto", {"auto", "exact", "iwae", "ddpm_vlb"},
                "auto = exact for density models, else IWAE for latent-variable models, else the DDPM bound")
        .integer("num_samples", 1000, "test examples evaluated (evenly strided over the test split)", at_least(1))
        .integer("importance_samples", 100, "k of the IWAE bound", at_least(1))
        .integer("timesteps", 100,
                 "DDPM bound: stratified sample of this many t in 1..T-1 (0 = all T-1, exact sum)", at_least(0))
        .integer("batch_size", 100, "test examples per model call", at_least(1));
  }
  Nll(const Options& options, const BuildContext&)
      : estimator_(options.string("estimator")),
        num_samples_(options.integer("num_samples")),
        k_(options.integer("importance_samples")),
        timesteps_(options.integer("timesteps")),
        batch_size_(options.integer("batch_size")) {}

  bool needs_samples() const override { return false; }

  MetricResult compute(MetricContext& context) override {
    GENFW_CHECK(context.model != nullptr, "metric 'nll': the metric context has no model");
    GENFW_CHECK(context.test_data != nullptr, "metric 'nll': the metric context has no test split");
    Model& model = *context.model;
    auto* density = as<DensityModel>(model);
    auto* latent = as<LatentVariableModel>(model);
    auto* diffusion = as<NoisePredictor>(model);
    std::string estimator = estimator_;
    if (estimator == "auto") estimator = density ? "exact" : latent ? "iwae" : diffusion ? "ddpm_vlb" : "";
    GENFW_CHECK(!estimator.empty(),
                "metric 'nll' needs capability 'density', 'latent-variable' or 'noise-prediction'; the model offers none");
    GENFW_CHECK(estimator != "exact" || density, "metric 'nll': option 'estimator' = \"exact\" needs capability 'density'");
    GENFW_CHECK(estimator != "iwae" || latent,
                "metric 'nll': option 'estimator' = \"iwae\" needs capability 'latent-variable'");
    GENFW_CHECK(estimator != "ddpm_vlb" || diffusion,
                "metric 'nll': option 'estimator' = \"ddpm_vlb\" needs capability 'noise-prediction'");

    const DataInfo& data = context.data;
    const int64_t size = context.test_data->size();
    const int64_t n = std::min(num_samples_, size);
    GENFW_CHECK(n >= 1, "metric 'nll': the test split is empty");
    auto indices = torch::linspace(0, double(size - 1), n, torch::kFloat64).round().to(torch::kLong);

    torch::NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    std::vector<torch::Tensor> bits;
    for (int64_t start = 0; start < n; start += batch_size_) {
      Batch batch = context.test_data->get(indices.slice(0, start, std::min(n, start + batch_size_)));
      auto x = batch.x.to(context.device, torch::kFloat32);
      torch::Tensor b;
      if (estimator == "exact") {
        b = genfw::bits_per_dim(density->log_prob(x).to(torch::kFloat64), data);
      } else if (estimator == "iwae") {
        b = genfw::bits_per_dim(genfw::iwae_log_likelihood(*latent, x, k_).to(torch::kFloat64), data);
      } else {
        torch::Tensor labels;  // conditional models: the "no class" label, i.e. log p(x)
        if (diffusion->num_classes() > 0)
          labels = torch::full({x.size(0)}, diffusion->num_classes(),
                               torch::TensorOptions().dtype(torch::kLong).device(x.device()));
        auto nats = metric::ddpm_vlb_nats(*diffusion, x, labels, data, timesteps_);
        b = nats.to(torch::kFloat64) / (double(data.dim()) * std::log(2.0));
      }
      bits.push_back(b.to(torch::kCPU));
    }
    model.train(was_training);
    auto all = torch::cat(bits);
    GENFW_CHECK(torch::isfinite(all).all().item<bool>(), "metric 'nll': estimator '", estimator,
                "' gave NaN or infinite log-likelihoods");

    MetricResult result;
    result.values["nll_bpd"] = all.mean().item<double>();
    result.values["nll_bpd_sem"] = n > 1 ? (all.std().item<double>() / std::sqrt(double(n))) : 0.0;
    result.provenance["samples"] = std::to_string(n) + " test examples of " + std::to_string(size);
    result.provenance["units"] = data.discrete_levels
                                     ? "bits/dim of the " + std::to_string(data.levels) + "-level discrete data"
                                     : std::string("bits/dim of the continuous density");
    if (estimator == "exact") {
      result.provenance["estimator"] = "exact log p(x) (density)";
    } else if (estimator == "iwae") {
      result.provenance["estimator"] = "IWAE bound, k=" + std::to_string(k_) + " (Burda et al. 2016)";
    } else {
      const int64_t T = diffusion->schedule().num_steps();
      const int64_t k = (timesteps_ <= 0 || timesteps_ >= T - 1) ? T - 1 : timesteps_;
      result.provenance["estimator"] =
          "DDPM L_vlb (Ho et al. 2020), fixed small variance, discretized Gaussian decoder at t=0, " +
          (k == T - 1 ? std::string("all ") + std::to_string(T) + " timesteps"
                      : std::to_string(k) + " of " + std::to_string(T - 1) + " KL terms stratified-sampled");
    }
    return result;
  }

 private:
  std::string estimator_;
  int64_t num_samples_, k_, timesteps_, batch_size_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<Nll>("nll", Kind::metric,
                "test NLL in bits/dim: exact density, IWAE bound (Burda et al. 2016) or DDPM L_vlb (Ho et al. 2020)")
      .require({Capability::density, Capability::latent_variable, Capability::noise_prediction});
}
