// Masked autoregressive flow (MAF; Papamakarios, Pavlakou & Murray 2017): K MADE
// layers (Germain et al. 2015), each an autoregressive affine map
//     u_i = (x_i − μ_i(x_<i))·exp(−α_i(x_<i)),   log|det ∂u/∂x| = −Σ_i α_i   (MAF eq. 2–4)
// with the variable order reversed (or freshly permuted) from one layer to the
// next, and optionally actnorm between layers (the paper uses batch norm, §3.4).
// Density: one pass per layer. Sampling: x_i = u_i·exp(α_i) + μ_i one variable at a
// time in the layer's order, D passes per layer (MAF §3.1).
//
// Density convention (genfw/likelihood.hpp): log_prob(x) is the log-density of the
// data-space value x, all Jacobians included. Images are flattened and, as in the
// paper's MNIST experiments (§4.3), dequantised and mapped to logit space
// y = logit(λ + (1 − 2λ)u) (genfw::to_logit_space, its Jacobian included), so
// bits/dim is the pixel-space number.
#include "genfw/sdk.hpp"

namespace genfw_maf {

using torch::Tensor;

/// One MAF layer: a MADE giving (μ, α) for every variable.
struct AutoregressiveAffine : genfw::FlowLayer {
  AutoregressiveAffine(const Tensor& order, int64_t hidden, int64_t layers, const std::string& activation) {
    made_ = register_module("made", genfw::Made(order, hidden, layers, 2, activation));
  }
  std::pair<Tensor, Tensor> shift_and_log_scale(const Tensor& x) {
    auto out = made_->forward(x);
    return {out.select(1, 0), out.select(1, 1)};
  }
  Tensor forward(const Tensor& x, Tensor& logdet) override {
    auto [mu, alpha] = shift_and_log_scale(x);
    logdet = logdet - alpha.sum(1);
    return (x - mu) * torch::exp(-alpha);
  }
  /// Sequential inversion: after pass t the variables of order < t + 1 are final, since
  /// μ_i, α_i read only variables of lower order.
  Tensor inverse(const Tensor& u) override {
    auto x = torch::zeros_like(u);
    const auto& order = made_->order();
    for (int64_t t = 0; t < u.size(1); ++t) {
      auto [mu, alpha] = shift_and_log_scale(x);
      x = torch::where(order == t, u * torch::exp(alpha) + mu, x);  // the variable whose turn it is
    }
    return x;
  }
  genfw::Made made_{nullptr};
};

class Maf : public genfw::Model, public genfw::DensityModel, public genfw::InvertibleFlow {
 public:
  struct Settings {
    int64_t num_layers = 5;
    int64_t hidden = 1024;
    int64_t made_layers = 2;
    std::string order = "reverse";
    std::string norm = "actnorm";
    std::string activation = "relu";
    double logit_alpha = 1e-6;
    bool dequantize = true;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("num_layers", &Settings::num_layers, "K: MADE layers (MAF (5) in the paper)", genfw::at_least(1))
            .integer("hidden", &Settings::hidden, "units of each MADE hidden layer", genfw::at_least(1))
            .integer("made_layers", &Settings::made_layers, "hidden layers of each MADE", genfw::at_least(1))
            .choice("order", &Settings::order, {"reverse", "random"},
                    "variable order of layer k+1: the reverse of layer k's (the paper's default), or a random "
                    "permutation")
            .choice("norm", &Settings::norm, {"actnorm", "none"}, "a normalisation layer after every MADE layer")
            .choice("activation", &Settings::activation, {"relu", "tanh", "elu", "silu"}, "MADE hidden activation")
            .real("logit_alpha", &Settings::logit_alpha,
                  "images: y = logit(alpha + (1 - 2 alpha) u) (the paper's lambda)", genfw::Range{0.0, 0.49})
            .boolean("dequantize", &Settings::dequantize, "uniform dequantisation of discrete data in log_prob");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  Maf(const genfw::Options& options, const genfw::BuildContext& context)
      : data_(context.data), settings_(bound_options().read(options)) {
    const int64_t d = data_.dim();
    GENFW_CHECK(d >= 2, "model 'maf' needs at least 2 dimensions, got ", d);
    const Settings& s = settings_;
    GENFW_CHECK(!(data_.is_image() && s.logit_alpha <= 0.0),
                "model 'maf': option 'logit_alpha' must be > 0 for images");
    auto order = torch::arange(d, torch::kLong);
    for (int64_t k = 0; k < s.num_layers; ++k) {
      if (k > 0) order = s.order == "reverse" ? order.flip({0}) : torch::randperm(d, torch::kLong);
      add(std::make_shared<AutoregressiveAffine>(order, s.hidden, s.made_layers, s.activation));
      if (s.norm == "actnorm") add(std::make_shared<genfw::ActNorm>(d, false));
    }
    to(context.device);
  }

  std::pair<Tensor, Tensor> to_latent(const Tensor& x) override {
    Tensor logdet = torch::zeros({x.size(0)}, x.options());
    Tensor h = data_.is_image() ? genfw::to_logit_space(x, data_, settings_.logit_alpha, logdet) : x;
    h = h.flatten(1);
    for (auto& layer : layers_) h = layer->forward(h, logdet);
    return {h, logdet};
  }

  Tensor from_latent(const Tensor& z) override {
    Tensor h = z;
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) h = (*it)->inverse(h);
    std::vector<int64_t> shape{z.size(0)};
    shape.insert(shape.end(), data_.shape.begin(), data_.shape.end());
    h = h.view(shape);
    return data_.is_image() ? genfw::from_logit_space(h, data_, settings_.logit_alpha) : h;
  }

  Tensor log_prob(const Tensor& x) override {
    auto [u, logdet] = to_latent(settings_.dequantize ? genfw::uniformly_dequantized(x, data_) : x);
    return genfw::standard_normal_log_density(u) + logdet;  // MAF eq. 4
  }

  Tensor sample(int64_t n, double temperature) override {
    auto reference = parameters().front();
    return sample_from_latent(temperature * torch::randn({n, data_.dim()}, reference.options()));
  }

  int64_t inverse_passes() const override { return data_.dim(); }  // AutoregressiveAffine::inverse

  Tensor sample_from_latent(const Tensor& z) override {
    auto x = from_latent(z);
    return data_.is_image() ? genfw::onto_data_levels(x, data_) : x;
  }

 private:
  void add(std::shared_ptr<genfw::FlowLayer> layer) {
    layers_.push_back(register_module("layer" + std::to_string(layers_.size()), std::move(layer)));
  }

  genfw::DataInfo data_;
  Settings settings_;
  std::vector<std::shared_ptr<genfw::FlowLayer>> layers_;
};

}  // namespace genfw_maf

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_maf::Maf>("maf", genfw::Kind::model,
                               "MAF, Papamakarios et al. 2017: stacked MADE autoregressive affine layers");
}
