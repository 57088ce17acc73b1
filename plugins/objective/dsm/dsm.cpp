// dsm: denoising score matching over noise levels (Vincent 2011; Song & Ermon
// 2019, Eq. 5–6, the reference anneal_dsm_score_estimation):
//   ℓ = ½ ‖s_θ(x̃, σ) + (x̃ − x)/σ²‖² · σ^anneal_power,  x̃ = x + σ z,
// one level drawn uniformly per sample, summed over dimensions, mean over the batch.
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

class DenoisingScoreMatching : public genfw::LossObjective {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .reals("sigmas", {}, "noise levels to train; empty = the model's noise_levels() "
                             "(one value = single-σ DSM)",
               genfw::at_least(0.0))
        .real("anneal_power", 2.0, "weight λ(σ) = σ^anneal_power (2 makes every level O(1))");
  }

  DenoisingScoreMatching(const genfw::Options& options, const genfw::BuildContext&)
      : anneal_power_(options.real("anneal_power")) {
    auto sigmas = options.reals("sigmas");
    for (double s : sigmas) {
      GENFW_CHECK(s > 0, options.owner(), ": option 'sigmas' must hold positive values, got ", s);
    }
    if (!sigmas.empty()) sigmas_ = torch::tensor(sigmas, torch::kFloat64);
  }

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ScoreFunction score(model);
    auto x = batch.x;
    auto n = x.size(0);
    auto levels = (sigmas_.defined() ? sigmas_ : score.noise_levels()).to(x.device(), x.scalar_type());
    auto index = torch::randint(levels.size(0), {n}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto sigma = levels.index_select(0, index);
    auto z = torch::randn_like(x);
    auto perturbed = x + genfw::per_sample(sigma, x) * z;
    auto target = -z / genfw::per_sample(sigma, x);  // = −(x̃ − x)/σ²
    auto s = score(perturbed, sigma);
    auto per_sample_loss = 0.5 * (s - target).pow(2).reshape({n, -1}).sum(1) * sigma.pow(anneal_power_);
    return per_sample_loss.mean();
  }

 private:
  torch::Tensor sigmas_;
  double anneal_power_;
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
