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
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("hidden", 128, "width of each hidden layer", genfw::at_least(1))
        .integer("layers", 3, "number of hidden layers", genfw::at_least(1))
        .choice("activation", "softplus", {"softplus", "silu", "elu", "tanh", "relu", "leaky_relu"},
                "hidden activation (smooth ones suit esm/ssm, which differentiate the score)")
        .integer("embedding_dim", 16, "size of the sinusoidal embedding of log σ", genfw::at_least(2))
        .real("sigma_begin", 5.0, "largest noise level σ_1", genfw::at_least(0.0))
        .real("sigma_end", 0.1, "smallest noise level σ_L", genfw::at_least(0.0))
        .integer("num_levels", 10, "number L of geometric noise levels", genfw::at_least(1));
  }

  ScoreMlp(const genfw::Options& options, const genfw::BuildContext& context)
      : dim_(context.data.dim()), embedding_dim_(options.integer("embedding_dim")) {
    const auto& owner = options.owner();
    GENFW_CHECK(!context.data.shape.empty() && dim_ >= 1, owner,
                ": needs the data shape (BuildContext::data.shape is empty)");
    GENFW_CHECK(options.real("sigma_begin") > 0 && options.real("sigma_end") > 0, owner,
                ": options 'sigma_begin' and 'sigma_end' must be > 0, got ", options.real("sigma_begin"),
                " and ", options.real("sigma_end"));
    levels_ = genfw::geometric_sigmas(options.real("sigma_begin"), options.real("sigma_end"),
                                      options.integer("num_levels"));
    net_ = register_module("net", genfw::make_mlp(dim_ + embedding_dim_, options.integer("hidden"), dim_,
                                                  options.integer("layers"), options.string("activation")));
    to(context.device);
  }

  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    auto n = x.size(0);
    auto s = sigma.reshape({-1}).expand({n}).to(x.device(), x.dtype());
    auto embedding = genfw::sinusoidal_embedding(s.log(), embedding_dim_).to(x.dtype());
    auto out = net_->forward(torch::cat({x.reshape({n, -1}), embedding}, 1));
    return (out / s.unsqueeze(1)).reshape(x.sizes());
  }
  torch::Tensor noise_levels() const override { return levels_; }

 private:
  int64_t dim_;
  int64_t embedding_dim_;
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
