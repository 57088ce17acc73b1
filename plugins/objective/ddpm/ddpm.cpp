// The DDPM "simple" loss (Ho et al. 2020, Alg. 1 / eq. 14): t ~ U{0..T−1},
// x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε, loss = ‖target − f(x_t, t)‖² with the target ε, x0
// or v = √ᾱ ε − √(1−ᾱ) x0 (Salimans & Ho 2022) by the model's prediction type.
// label_dropout replaces labels by the null class (Ho & Salimans 2022, CFG).
#include <genfw/sdk.hpp>

namespace {

class DdpmObjective : public genfw::LossObjective {
 public:
  struct Settings {
    double label_dropout = 0.0;
    std::string loss = "mse";
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .real("label_dropout", &Settings::label_dropout,
                  "probability of replacing a label by the null class (classifier-free guidance)",
                  genfw::between(0.0, 1.0))
            .choice("loss", &Settings::loss, {"mse"}, "mean squared error over all dimensions (L_simple)");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }
  DdpmObjective(const genfw::Options& options, const genfw::BuildContext&)
      : settings_(bound_options().read(options)) {}

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    auto* net = genfw::as<genfw::NoisePredictor>(model);
    GENFW_CHECK(net != nullptr, "objective 'ddpm' needs capability 'noise-prediction'");
    const auto& schedule = net->schedule();
    const auto& x0 = batch.x;
    const int64_t n = x0.size(0);
    auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(x0.device());
    auto t = torch::randint(0, schedule.num_steps(), {n}, long_opts);
    auto alpha_bar = genfw::alpha_bar_at(schedule, t, x0);
    auto eps = torch::randn_like(x0);
    auto x_t = genfw::per_sample(alpha_bar.sqrt(), x0) * x0 +
               genfw::per_sample((1 - alpha_bar).sqrt(), x0) * eps;

    torch::Tensor labels;
    if (net->num_classes() > 0) {
      const int64_t null_class = net->num_classes();
      // Unlabelled data trains the unconditional (null-class) branch only.
      labels = batch.y.defined() ? batch.y.to(x0.device(), torch::kLong)
                                 : torch::full({n}, null_class, long_opts);
      if (settings_.label_dropout > 0) {
        auto drop = torch::rand({n}, x0.options()) < settings_.label_dropout;
        labels = torch::where(drop, torch::full_like(labels, null_class), labels);
      }
    }
    torch::Tensor target;
    switch (net->prediction_type()) {
      case genfw::PredictionType::epsilon: target = eps; break;
      case genfw::PredictionType::sample: target = x0; break;
      case genfw::PredictionType::v_prediction: target = genfw::v_from_eps(x0, eps, alpha_bar); break;
    }
    return torch::mse_loss(net->predict(x_t, t, labels), target);
  }

 private:
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<DdpmObjective>("ddpm", genfw::Kind::objective,
                          "DDPM simple loss ‖target − f(x_t, t)‖², target ε / x0 / v "
                          "(Ho et al. 2020, Alg. 1)")
      .require(genfw::Capability::noise_prediction);
}
