// esm: implicit (Hyvärinen 2005) score matching,
//   J(θ) = E_x̃ [ tr ∂s_θ(x̃, σ)/∂x̃ + ½‖s_θ(x̃, σ)‖² ],   x̃ = x + σ z,
// with the exact trace: one backward pass per data dimension (create_graph so
// the loss stays differentiable in θ). The data are perturbed by the same σ the
// model is evaluated at, so the minimiser is ∇ log p_σ, the score that model
// level was built for (Song & Ermon 2019, §3). Cost grows with D: refused above
// `max_dim`.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class ExactScoreMatching : public genfw::LossObjective {
 public:
  struct Settings {
    double sigma = 0.0;
    int64_t max_dim = 16;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .real("sigma", &Settings::sigma,
                  "noise level σ: data are perturbed by N(0, σ²I) and the model is evaluated at σ; "
                  "0 = the smallest of the model's noise_levels()",
                  genfw::at_least(0.0))
            .integer("max_dim", &Settings::max_dim,
                     "largest data dimension accepted (the trace costs D backward passes)", genfw::at_least(1));
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  ExactScoreMatching(const genfw::Options& options, const genfw::BuildContext& context)
      : owner_(options.owner()), settings_(bound_options().read(options)) {
    if (!context.data.shape.empty()) check_dim(context.data.dim());
  }

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ModelDenoiser denoiser(model);
    auto n = batch.x.size(0);
    auto x = batch.x.reshape({n, -1});
    int64_t d = x.size(1);
    check_dim(d);
    const double sigma = settings_.sigma > 0 ? settings_.sigma : denoiser.levels().sigma_min;
    auto sigmas = torch::full({n}, sigma, x.options());
    auto perturbed = (x + sigma * torch::randn_like(x)).detach().requires_grad_(true);
    auto s = denoiser.score(perturbed.view(batch.x.sizes()), sigmas).reshape({n, d});
    auto trace = torch::zeros({n}, x.options());
    for (int64_t i = 0; i < d; ++i) {
      auto grad = torch::autograd::grad({s.select(1, i).sum()}, {perturbed}, {}, /*retain_graph=*/true,
                                        /*create_graph=*/true)[0];
      trace = trace + grad.select(1, i);
    }
    return (trace + 0.5 * s.pow(2).sum(1)).mean();
  }

 private:
  void check_dim(int64_t d) const {
    GENFW_CHECK(d <= settings_.max_dim, owner_, ": data have ", d, " dimensions, above option 'max_dim' (",
                settings_.max_dim, "); exact score matching needs one backward pass per dimension — use 'ssm' "
                "or 'dsm' for high-dimensional data, or raise 'max_dim'");
  }
  std::string owner_;
  Settings settings_;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::ExactScoreMatching>(
          "esm", genfw::Kind::objective,
          "implicit score matching E[tr ∂s/∂x + ½‖s‖²] with the exact trace (Hyvärinen 2005)")
      .require(genfw::Capability::score);
}
