// dsm: denoising score matching over noise levels (Vincent 2011; Song & Ermon
// 2019, Eq. 5–6, the reference anneal_dsm_score_estimation):
//   ℓ = ½ ‖s_θ(x̃, σ) + (x̃ − x)/σ²‖² · σ^anneal_power,  x̃ = x + σ z,
// one level drawn uniformly per sample, summed over dimensions, mean over the batch.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class DenoisingScoreMatching : public genfw::LossObjective {
 public:
  struct Settings {
    std::vector<double> sigmas = {};
    double anneal_power = 2.0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .reals("sigmas", &Settings::sigmas,
                   "noise levels to train; empty = the model's noise_levels() "
                   "(one value = single-σ DSM)",
                   genfw::at_least(0.0))
            .real("anneal_power", &Settings::anneal_power, "weight λ(σ) = σ^anneal_power (2 makes every level O(1))");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  DenoisingScoreMatching(const genfw::Options& options, const genfw::BuildContext&)
      : settings_(bound_options().read(options)) {
    for (double s : settings_.sigmas) {
      GENFW_CHECK(s > 0, options.owner(), ": option 'sigmas' must hold positive values, got ", s);
    }
    if (!settings_.sigmas.empty()) sigmas_ = torch::tensor(settings_.sigmas, torch::kFloat64);
  }

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ModelDenoiser denoiser(model);
    auto x = batch.x;
    auto n = x.size(0);
    const auto& levels = levels_like(sigmas_.defined() ? sigmas_ : denoiser.levels().sigmas, x);
    auto index = torch::randint(levels.size(0), {n}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto sigma = levels.index_select(0, index);
    auto z = torch::randn_like(x);
    auto sigma_x = genfw::per_sample(sigma, x);
    auto perturbed = x + sigma_x * z;
    auto s = denoiser.score(perturbed, sigma);
    auto residual = s + z / sigma_x;  // s − target, target = −z/σ = −(x̃ − x)/σ² (one op fewer, same bits)
    auto per_sample_loss = 0.5 * residual.pow(2).reshape({n, -1}).sum(1) * sigma.pow(settings_.anneal_power);
    return per_sample_loss.mean();
  }

 private:
  // `source` on x's device and dtype, converted once and kept while the source, device and
  // dtype stay the same (a copy made under inference mode is not reused outside it).
  const torch::Tensor& levels_like(const torch::Tensor& source, const torch::Tensor& x) {
    if (!levels_.defined() || !levels_source_.is_same(source) || levels_.device() != x.device() ||
        levels_.scalar_type() != x.scalar_type() || (levels_.is_inference() && !c10::InferenceMode::is_enabled())) {
      levels_source_ = source;
      levels_ = source.to(x.device(), x.scalar_type());
    }
    return levels_;
  }

  torch::Tensor levels_source_, levels_;
  Settings settings_;
  torch::Tensor sigmas_;  // settings_.sigmas as a tensor; undefined = the model's levels
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::DenoisingScoreMatching>(
          "dsm", genfw::Kind::objective,
          "annealed denoising score matching ½‖s(x̃,σ)+(x̃−x)/σ²‖²σ^p (Vincent 2011; Song & Ermon 2019)")
      .require(genfw::Capability::score);
}
