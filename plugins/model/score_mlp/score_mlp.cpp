// score_mlp: a noise-conditional score network for low-dimensional data.
// s_θ(x, σ) = f_θ([x, e(log σ)]) / σ — the output is divided by σ (Song & Ermon
// 2020, "Improved Techniques for Training Score-Based Generative Models",
// technique 3), so f only has to learn σ·∇ log p_σ, whose scale is O(1) at
// every level. e is genfw::sinusoidal_embedding of log σ (Vaswani et al. 2017).
#include <genfw/nn.hpp>
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class ScoreMlp : public genfw::Model, public genfw::ScoreModel {
 public:
  struct Settings {
    int64_t hidden = 128;
    int64_t layers = 3;
    std::string activation = "softplus";
    int64_t embedding_dim = 16;
    double sigma_begin = 5.0;
    double sigma_end = 0.1;
    int64_t num_levels = 10;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("hidden", &Settings::hidden, "width of each hidden layer", genfw::at_least(1))
            .integer("layers", &Settings::layers, "number of hidden layers", genfw::at_least(1))
            .choice("activation", &Settings::activation, {"softplus", "silu", "elu", "tanh", "relu", "leaky_relu"},
                    "hidden activation (smooth ones suit esm/ssm, which differentiate the score)")
            .integer("embedding_dim", &Settings::embedding_dim, "size of the sinusoidal embedding of log σ",
                     genfw::at_least(2))
            .real("sigma_begin", &Settings::sigma_begin, "largest noise level σ_1", genfw::at_least(0.0))
            .real("sigma_end", &Settings::sigma_end, "smallest noise level σ_L", genfw::at_least(0.0))
            .integer("num_levels", &Settings::num_levels, "number L of geometric noise levels", genfw::at_least(1));
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  ScoreMlp(const genfw::Options& options, const genfw::BuildContext& context)
      : dim_(context.data.dim()), settings_(bound_options().read(options)) {
    const auto& owner = options.owner();
    const Settings& s = settings_;
    GENFW_CHECK(!context.data.shape.empty() && dim_ >= 1, owner,
                ": needs the data shape (BuildContext::data.shape is empty)");
    GENFW_CHECK(s.sigma_begin > 0 && s.sigma_end > 0, owner,
                ": options 'sigma_begin' and 'sigma_end' must be > 0, got ", s.sigma_begin, " and ", s.sigma_end);
    levels_ = genfw::geometric_sigmas(s.sigma_begin, s.sigma_end, s.num_levels);
    net_ = register_module("net", genfw::make_mlp(dim_ + s.embedding_dim, s.hidden, dim_, s.layers, s.activation));
    to(context.device);
  }

  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    auto n = x.size(0);
    auto s = sigma.reshape({-1}).expand({n}).to(x.device(), x.dtype());
    auto embedding = genfw::sinusoidal_embedding(s.log(), settings_.embedding_dim).to(x.dtype());
    auto out = net_->forward(torch::cat({x.reshape({n, -1}), embedding}, 1));
    return (out / s.unsqueeze(1)).reshape(x.sizes());
  }
  torch::Tensor noise_levels() const override { return levels_; }

 private:
  int64_t dim_;
  Settings settings_;
  torch::Tensor levels_;
  torch::nn::Sequential net_{nullptr};
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::ScoreMlp>("score_mlp", genfw::Kind::model,
                                  "noise-conditional MLP score s(x,σ) = f(x, emb(log σ))/σ "
                                  "(Song & Ermon 2019; σ-scaling of Song & Ermon 2020)");
}
