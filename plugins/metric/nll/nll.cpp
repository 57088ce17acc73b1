/// Test-set negative log-likelihood in bits/dim from whatever the model offers:
///   density          exact log p(x)                       (e.g. RealNVP, Dinh et al. 2017)
///   latent_variable  IWAE bound L_k                       (Burda et al. 2016)
///   noise_prediction DDPM variational bound L_vlb         (Ho et al. 2020; Nichol & Dhariwal 2021)
///   score (or noise_prediction with estimator = "ode")
///                    log p through the probability-flow ODE (Song et al. 2021 App. D;
///                    Chen et al. 2018), genfw::ode_log_likelihood, with uniform
///                    dequantization of discrete data as score_sde's likelihood.py
/// Units follow genfw/likelihood.hpp: a data-space density is
/// converted with the quantisation-bin offset for discrete data; the DDPM bound
/// with its discretized decoder is already on a probability mass.
#include <cmath>
#include <optional>
#include <sstream>

#include "genfw/sdk.hpp"

#include "ddpm_vlb.hpp"

namespace {

using namespace genfw;

class Nll : public Metric {
 public:
  struct Settings {
    std::string estimator = "auto";
    int64_t num_samples = 1000;
    int64_t importance_samples = 100;
    int64_t timesteps = 100;
    int64_t batch_size = 100;
    std::string divergence = "auto";
    std::string probe = "rademacher";
    int64_t probes = 1;
    double rtol = 1e-5;
    double atol = 1e-5;
    bool dequantize = true;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .choice("estimator", &Settings::estimator, {"auto", "exact", "iwae", "ddpm_vlb", "ode"},
                    "auto = exact for density models, else IWAE for latent-variable models, else the DDPM bound for "
                    "noise predictors, else the probability-flow ODE for score models")
            .integer("num_samples", &Settings::num_samples,
                     "test examples evaluated (evenly strided over the test split)", at_least(1))
            .integer("importance_samples", &Settings::importance_samples, "k of the IWAE bound", at_least(1))
            .integer("timesteps", &Settings::timesteps,
                     "DDPM bound: stratified sample of this many t in 1..T-1 (0 = all T-1, exact sum)", at_least(0))
            .integer("batch_size", &Settings::batch_size, "test examples per model call", at_least(1))
            .choice(
                "divergence", &Settings::divergence, {"auto", "exact", "hutchinson"},
                "ODE: ∇·f̃ by the exact trace (D backward passes) or Hutchinson's estimator; auto = exact for D <= 8")
            .choice("probe", &Settings::probe, {"rademacher", "gaussian"}, "ODE: Hutchinson probe distribution")
            .integer("probes", &Settings::probes,
                     "ODE: Hutchinson probes per example, fixed along the path (score_sde: 1)", at_least(1))
            .real("rtol", &Settings::rtol, "ODE: Dormand–Prince relative tolerance (score_sde: 1e-5)",
                  between(1e-12, 1.0))
            .real("atol", &Settings::atol, "ODE: Dormand–Prince absolute tolerance (score_sde: 1e-5)",
                  between(1e-12, 1.0))
            .boolean("dequantize", &Settings::dequantize,
                     "ODE: add uniform noise within each quantisation bin of discrete data");
    return binding;
  }
  static Schema schema() { return Schema(bound_options().schema()).merge(sde_schema()); }
  Nll(const Options& options, const BuildContext&) : settings_(bound_options().read(options)), options_(options) {
    check_sde_options(options);
  }

  bool needs_samples() const override { return false; }

  MetricResult compute(MetricContext& context) override {
    GENFW_CHECK(context.model != nullptr, "metric 'nll': the metric context has no model");
    GENFW_CHECK(context.test_data != nullptr, "metric 'nll': the metric context has no test split");
    Model& model = *context.model;
    auto* density = as<DensityModel>(model);
    auto* latent = as<LatentVariableModel>(model);
    auto* diffusion = as<NoisePredictor>(model);
    std::string estimator = settings_.estimator;
    auto* score_model = as<ScoreModel>(model);
    if (estimator == "auto") {
      estimator = density ? "exact" : latent ? "iwae" : diffusion ? "ddpm_vlb" : score_model ? "ode" : "";
    }
    GENFW_CHECK(!estimator.empty(),
                "metric 'nll' needs capability 'density', 'latent-variable', 'noise-prediction' or 'score'; the model "
                "offers none");
    GENFW_CHECK(estimator != "ode" || diffusion || score_model,
                "metric 'nll': option 'estimator' = \"ode\" needs capability 'score' or 'noise-prediction'");
    GENFW_CHECK(estimator != "exact" || density, "metric 'nll': option 'estimator' = \"exact\" needs capability 'density'");
    GENFW_CHECK(estimator != "iwae" || latent,
                "metric 'nll': option 'estimator' = \"iwae\" needs capability 'latent-variable'");
    GENFW_CHECK(estimator != "ddpm_vlb" || diffusion,
                "metric 'nll': option 'estimator' = \"ddpm_vlb\" needs capability 'noise-prediction'");

    const DataInfo& data = context.data;
    const int64_t size = context.test_data->size();
    const int64_t n = std::min(settings_.num_samples, size);
    GENFW_CHECK(n >= 1, "metric 'nll': the test split is empty");
    auto indices = torch::linspace(0, double(size - 1), n, torch::kFloat64).round().to(torch::kLong);

    torch::NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    std::vector<torch::Tensor> bits;
    std::unique_ptr<Sde> sde;
    int64_t nfe = 0, batches = 0;
    std::optional<ModelDenoiser> denoiser;
    std::optional<SdeView> ode_view;
    const bool exact_trace = settings_.divergence == "exact" || (settings_.divergence == "auto" && data.dim() <= 8);
    if (estimator == "ode") {
      denoiser.emplace(model);
      denoiser->set_evaluation_hook([&nfe](int64_t evaluations) { nfe += evaluations; });
      sde = make_sde(options_, *denoiser);
      ode_view.emplace(*denoiser, *sde);
    }
    for (int64_t start = 0; start < n; start += settings_.batch_size) {
      Batch batch = context.test_data->get(indices.slice(0, start, std::min(n, start + settings_.batch_size)));
      auto x = batch.x.to(context.device, torch::kFloat32);
      torch::Tensor b;
      if (estimator == "exact") {
        b = genfw::bits_per_dim(density->log_prob(x).to(torch::kFloat64), data);
      } else if (estimator == "iwae") {
        auto log_likelihood = genfw::iwae_log_likelihood(*latent, x, settings_.importance_samples);
        b = genfw::bits_per_dim(log_likelihood.to(torch::kFloat64), data);
      } else if (estimator == "ode") {
        if (data.discrete_levels && settings_.dequantize) x = dequantized(x, data);
        auto likelihood = ode_log_likelihood(*ode_view, x, options_.real("eps"), settings_.rtol, settings_.atol,
                                             exact_trace ? std::vector<torch::Tensor>() : draw_probes(x));
        b = genfw::bits_per_dim(likelihood.log_prob, data);
        ++batches;
      } else {
        torch::Tensor labels;  // conditional models: the "no class" label, i.e. log p(x)
        if (diffusion->num_classes() > 0)
          labels = torch::full({x.size(0)}, diffusion->num_classes(),
                               torch::TensorOptions().dtype(torch::kLong).device(x.device()));
        auto nats = metric::ddpm_vlb_nats(*diffusion, x, labels, data, settings_.timesteps);
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
    result.describe("nll_bpd", Better::lower, "bits/dim");
    result.provenance["samples"] = std::to_string(n) + " test examples of " + std::to_string(size);
    result.provenance["units"] = data.discrete_levels
                                     ? "bits/dim of the " + std::to_string(data.levels) + "-level discrete data"
                                     : std::string("bits/dim of the continuous density");
    if (estimator == "exact") {
      result.provenance["estimator"] = "exact log p(x) (density)";
    } else if (estimator == "iwae") {
      result.provenance["estimator"] =
          "IWAE bound, k=" + std::to_string(settings_.importance_samples) + " (Burda et al. 2016)";
    } else if (estimator == "ode") {
      record_ode_provenance(result, *sde, exact_trace, data, double(nfe) / double(std::max<int64_t>(batches, 1)));
    } else {
      const int64_t T = diffusion->schedule().num_steps();
      const int64_t k = (settings_.timesteps <= 0 || settings_.timesteps >= T - 1) ? T - 1 : settings_.timesteps;
      result.provenance["estimator"] =
          "DDPM L_vlb (Ho et al. 2020), fixed small variance, discretized Gaussian decoder at t=0, " +
          (k == T - 1 ? std::string("all ") + std::to_string(T) + " timesteps"
                      : std::to_string(k) + " of " + std::to_string(T - 1) + " KL terms stratified-sampled");
    }
    return result;
  }

 private:
  // Uniform dequantization (score_sde's likelihood.py, (x·255 + U)/256 on [0, 1]): the
  // bin of level k on [low, high] is [low + k·w, low + (k+1)·w), w = (high − low)/L.
  static torch::Tensor dequantized(const torch::Tensor& x, const DataInfo& data) {
    const double width = (data.high - data.low) / double(data.levels);
    auto level = ((x - data.low) / (data.high - data.low) * double(data.levels - 1)).round();
    return data.low + (level + torch::rand_like(x)) * width;
  }

  std::vector<torch::Tensor> draw_probes(const torch::Tensor& x) const {
    std::vector<torch::Tensor> probes;
    const bool gaussian = settings_.probe == "gaussian";
    for (int64_t i = 0; i < settings_.probes; ++i) {
      probes.push_back(gaussian ? torch::randn_like(x) : torch::randint_like(x, 0, 2) * 2 - 1);
    }
    return probes;
  }

  void record_ode_provenance(MetricResult& result, const Sde& sde, bool exact_trace, const DataInfo& data,
                             double nfe_per_batch) const {
    std::ostringstream estimator, solver;
    estimator << "probability-flow ODE log-likelihood (Song et al. 2021 App. D; Chen et al. 2018) under the "
              << sde.name() << " SDE, prior N(0, " << sde.prior_std() << "² I), divergence: "
              << (exact_trace ? std::string("exact trace")
                              : std::to_string(settings_.probes) +
                                    (settings_.probe == "gaussian" ? " Gaussian" : " Rademacher") +
                                    " Hutchinson probe(s) per example");
    solver << "Dormand–Prince 5(4), rtol " << settings_.rtol << ", atol " << settings_.atol << ", t from "
           << options_.real("eps") << " to 1";
    result.provenance["estimator"] = estimator.str();
    result.provenance["ode_solver"] = solver.str();
    result.provenance["nfe"] = std::to_string(nfe_per_batch) + " score evaluations per batch (mean)";
    result.provenance["dequantization"] =
        data.discrete_levels && settings_.dequantize
            ? "uniform within each of the " + std::to_string(data.levels) + " levels"
            : std::string("none");
  }

  Settings settings_;
  Options options_;  // the SDE reads its own keys from them
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<Nll>("nll", Kind::metric,
                "test NLL in bits/dim: exact density, IWAE bound (Burda et al. 2016), DDPM L_vlb (Ho et al. 2020) "
                "or the probability-flow ODE (Song et al. 2021)")
      .require({Capability::density, Capability::latent_variable, Capability::noise_prediction, Capability::score});
}
