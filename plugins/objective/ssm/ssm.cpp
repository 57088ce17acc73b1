// ssm / ssm_vr: sliced score matching (Song, Garg, Shi & Ermon 2019),
//   J(θ) = E_x̃ E_v [ vᵀ ∇x̃(vᵀ s_θ(x̃, σ)) + ½ (vᵀ s_θ(x̃, σ))² ],
// and its variance-reduced form (ssm_vr) where E_v[½(vᵀs)²] = ½‖s‖² is taken in
// closed form (E[vvᵀ] = I for Gaussian and Rademacher v). One backward pass per
// projection batch, whatever the dimension. Projections are NOT normalised (the
// reference code normalises Gaussian v to the unit sphere, which only rescales
// the loss by 1/D), so the value equals exact score matching in expectation.
// Like esm, the data are perturbed by the σ the model is evaluated at.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class SlicedScoreMatching : public genfw::LossObjective {
 public:
  struct Settings {
    double sigma = 0.0;
    int64_t projections = 1;
    std::string distribution = "gaussian";
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .real("sigma", &Settings::sigma,
                  "noise level σ: data are perturbed by N(0, σ²I) and the model is evaluated at σ; "
                  "0 = the smallest of the model's noise_levels()",
                  genfw::at_least(0.0))
            .integer("projections", &Settings::projections, "number of random projections v per sample",
                     genfw::at_least(1))
            .choice("distribution", &Settings::distribution, {"gaussian", "rademacher"}, "law of the projections v");
    return binding;
  }
  // variance_reduction stays a plain declaration: its default differs between ssm and ssm_vr.
  static genfw::Schema schema_with(bool variance_reduction) {
    return genfw::Schema(bound_options().schema())
        .boolean("variance_reduction", variance_reduction,
                 "replace ½(vᵀs)² by its expectation ½‖s‖² (SSM-VR)");
  }
  static genfw::Schema schema() { return schema_with(false); }

  SlicedScoreMatching(const genfw::Options& options, const genfw::BuildContext&)
      : settings_(bound_options().read(options)), variance_reduction_(options.flag("variance_reduction")) {}

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ModelDenoiser denoiser(model);
    auto n = batch.x.size(0);
    auto x = batch.x.reshape({n, -1});
    const double sigma = settings_.sigma > 0 ? settings_.sigma : denoiser.levels().sigma_min;
    // Each sample repeated M times, each copy with its own projection.
    auto repeated = x.repeat({settings_.projections, 1});
    auto perturbed = (repeated + sigma * torch::randn_like(repeated)).detach().requires_grad_(true);
    auto v = torch::randn_like(repeated);
    if (settings_.distribution == "rademacher") v = torch::sign(torch::randint_like(repeated, 0, 2) - 0.5);
    std::vector<int64_t> shape = batch.x.sizes().vec();
    shape[0] = perturbed.size(0);
    auto s = denoiser.score(perturbed.view(shape), sigma)
                 .reshape(perturbed.sizes());
    auto vs = (v * s).sum(1);
    auto grad = torch::autograd::grad({vs.sum()}, {perturbed}, {}, /*retain_graph=*/true,
                                      /*create_graph=*/true)[0];
    auto curvature = (v * grad).sum(1);
    auto norm = variance_reduction_ ? 0.5 * s.pow(2).sum(1) : 0.5 * vs.pow(2);
    return (curvature + norm).mean();
  }

 private:
  Settings settings_;
  bool variance_reduction_;
};

// Same class, variance reduction on by default.
struct SlicedScoreMatchingVr : SlicedScoreMatching {
  using SlicedScoreMatching::SlicedScoreMatching;
  static genfw::Schema schema() { return schema_with(true); }
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::SlicedScoreMatching>(
          "ssm", genfw::Kind::objective,
          "sliced score matching E[vᵀ∇(vᵀs) + ½(vᵀs)²] (Song, Garg, Shi & Ermon 2019)")
      .require(genfw::Capability::score);
  manifest
      .add<genfw_score::SlicedScoreMatchingVr>(
          "ssm_vr", genfw::Kind::objective,
          "sliced score matching, variance-reduced E[vᵀ∇(vᵀs) + ½‖s‖²] (Song, Garg, Shi & Ermon 2019)")
      .require(genfw::Capability::score);
}
