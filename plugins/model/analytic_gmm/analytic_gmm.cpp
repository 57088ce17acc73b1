// analytic_gmm: an isotropic Gaussian mixture whose score, density and samples
// are exact. It needs no training; it is the ground truth for the score family
// (Song & Ermon 2019, Fig. 3 samples its exact scores) and a fixture for tests.
#include <genfw/gaussian_mixture.hpp>
#include <genfw/sdk.hpp>

namespace genfw_score {
namespace {

using genfw::GaussianMixture;

class AnalyticGmm : public genfw::Model, public genfw::ScoreModel, public genfw::DensityModel {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .matrix("means", {{-5.0, -5.0}, {5.0, 5.0}}, "component means [K, D] (D = data dimension)")
        .reals("weights", {0.2, 0.8}, "mixture weights (normalised; one per mean)", genfw::at_least(0.0))
        .reals("stds", {1.0}, "isotropic std per component, or one for all", genfw::at_least(0.0))
        .real("sigma_begin", 20.0, "largest noise level σ_1 of noise_levels() (Song & Ermon toy: 20)",
              genfw::at_least(0.0))
        .real("sigma_end", 1.0, "smallest noise level σ_L of noise_levels() (toy: 1)", genfw::at_least(0.0))
        .integer("num_levels", 10, "number L of geometric noise levels", genfw::at_least(1));
  }

  AnalyticGmm(const genfw::Options& options, const genfw::BuildContext& context)
      : mixture_(make_mixture(options)), shape_(context.data.shape) {
    const auto& owner = options.owner();
    if (!shape_.empty()) {
      GENFW_CHECK(mixture_.dim() == context.data.dim(), owner, ": option 'means' has dimension ",
                  mixture_.dim(), " but the data has ", context.data.dim(), " values per sample");
    } else {
      shape_ = {mixture_.dim()};
    }
    GENFW_CHECK(options.real("sigma_begin") > 0 && options.real("sigma_end") > 0, owner,
                ": options 'sigma_begin' and 'sigma_end' must be > 0, got ", options.real("sigma_begin"),
                " and ", options.real("sigma_end"));
    levels_ = genfw::geometric_sigmas(options.real("sigma_begin"), options.real("sigma_end"),
                                      options.integer("num_levels"));
    device_ = context.device;
  }

  // Exact ∇x log (p ∗ N(0, σ²I))(x); differentiable in x (the objectives' tests
  // take its Jacobian). x: [N, shape...].
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    auto flat = x.reshape({x.size(0), -1});
    auto s = sigma.reshape({-1}).expand({x.size(0)});
    return mixture_.score_with_noise(flat, s).reshape(x.sizes());
  }
  torch::Tensor noise_levels() const override { return levels_; }

  torch::Tensor log_prob(const torch::Tensor& x) override {
    return mixture_.log_prob(x.reshape({x.size(0), -1}));
  }
  // Exact samples; `temperature` multiplies every component's std.
  torch::Tensor sample(int64_t n, double temperature) override {
    GaussianMixture tempered(mixture_.means, mixture_.weights, mixture_.stds * temperature);
    std::vector<int64_t> shape{n};
    shape.insert(shape.end(), shape_.begin(), shape_.end());
    return tempered.sample(n).to(device_, torch::kFloat32).reshape(shape);
  }

 private:
  static GaussianMixture make_mixture(const genfw::Options& options) {
    try {
      return GaussianMixture::from_options(options.matrix("means"), options.reals("weights"),
                                           options.reals("stds"));
    } catch (const genfw::Error& e) {
      throw genfw::Error(options.owner() + ": options 'means'/'weights'/'stds': " + e.what());
    }
  }

  GaussianMixture mixture_;
  std::vector<int64_t> shape_;
  torch::Tensor levels_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::AnalyticGmm>("analytic_gmm", genfw::Kind::model,
                                     "exact isotropic Gaussian mixture: score of p∗N(0,σ²I), log p, "
                                     "samples (ground truth; Song & Ermon 2019 Fig. 3)");
}
