// Time-conditioned MLP noise predictor for low-dimensional data:
// [x ⊕ sinusoidal(t) (⊕ class embedding)] → MLP → ε / x0 / v (Ho et al. 2020 with
// the Transformer time embedding; class embedding with a null class for
// classifier-free guidance, Ho & Salimans 2022).
#include <genfw/nn.hpp>
#include <genfw/sdk.hpp>

namespace {

using genfw::DiffusionSettings;

class EpsMlp : public genfw::Model, public genfw::NoisePredictor {
 public:
  struct Settings {
    int64_t hidden = 128;
    int64_t layers = 3;
    int64_t time_embedding_dim = 32;
    std::string activation = "silu";
    int64_t num_classes = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("hidden", &Settings::hidden, "width of the hidden layers", genfw::at_least(1))
            .integer("layers", &Settings::layers, "number of hidden layers", genfw::at_least(1))
            .integer("time_embedding_dim", &Settings::time_embedding_dim, "size of the sinusoidal time embedding",
                     genfw::at_least(2))
            .choice("activation", &Settings::activation, {"silu", "relu", "elu", "softplus", "tanh", "leaky_relu"},
                    "hidden activation")
            .integer("num_classes", &Settings::num_classes,
                     "0 = unconditional; else a class embedding with extra null class index "
                     "num_classes (classifier-free guidance)",
                     genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() {
    return genfw::Schema(bound_options().schema()).merge(genfw::diffusion_schema());
  }

  EpsMlp(const genfw::Options& options, const genfw::BuildContext& context)
      : diffusion_(DiffusionSettings::from_options(options)), settings_(bound_options().read(options)) {
    GENFW_CHECK(!context.data.shape.empty(), options.owner(), ": needs the data shape");
    dim_ = context.data.dim();
    const int64_t time_dim = settings_.time_embedding_dim, num_classes = settings_.num_classes;
    int64_t in = dim_ + time_dim;
    if (num_classes > 0) {
      class_embedding_ = register_module(
          "class_embedding", torch::nn::Embedding(num_classes + 1, time_dim));
      in += time_dim;
    }
    net_ = register_module("net", genfw::make_mlp(in, settings_.hidden, dim_, settings_.layers,
                                                   settings_.activation));
    to(context.device);
  }

  torch::Tensor predict(const torch::Tensor& x_t, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    const int64_t n = x_t.size(0);
    std::vector<torch::Tensor> parts{x_t.reshape({n, dim_}),
                                     genfw::sinusoidal_embedding(t, settings_.time_embedding_dim).to(x_t.dtype())};
    if (settings_.num_classes > 0) {
      // Missing labels mean "no class" (the null index).
      auto labels = y.defined() ? y.to(x_t.device(), torch::kLong)
                                : torch::full({n}, settings_.num_classes,
                                              torch::TensorOptions().dtype(torch::kLong).device(x_t.device()));
      parts.push_back(class_embedding_(labels).to(x_t.dtype()));
    }
    return net_->forward(torch::cat(parts, 1)).reshape(x_t.sizes());
  }
  const genfw::DiffusionSchedule& schedule() const override { return diffusion_.schedule; }
  genfw::PredictionType prediction_type() const override { return diffusion_.prediction_type; }
  int64_t num_classes() const override { return settings_.num_classes; }

 private:
  DiffusionSettings diffusion_;
  Settings settings_;
  int64_t dim_ = 0;
  torch::nn::Embedding class_embedding_{nullptr};
  torch::nn::Sequential net_{nullptr};
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<EpsMlp>("eps_mlp", genfw::Kind::model,
                   "time-conditioned MLP noise predictor for low-dimensional data (Ho et al. 2020)");
}
