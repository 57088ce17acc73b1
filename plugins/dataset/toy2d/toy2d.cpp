// Seeded 2-D toy distributions of the score-matching and flow literature:
//   gmm              Σ w_k N(μ_k, s_k² I); the default is Song & Ermon (2019)'s
//                    1/5·N((−5,−5), I) + 4/5·N((5,5), I)
//   eight_gaussians  8 modes on a circle (WGAN-GP, Gulrajani et al. 2017; FFJORD)
//   two_moons        scikit-learn's make_moons, placed as in FFJORD (Grathwohl et al. 2019)
//   swiss_roll       scikit-learn's make_swiss_roll, (x, z) plane / 5, as in FFJORD
//   checkerboard     FFJORD's 4×4 checkerboard on [−4, 4)²
//   rings            4 concentric rings of radii 0.75, 1.5, 2.25, 3 (FFJORD's "rings")
//
// All points are drawn once, in the constructor, from a local CPU generator
// seeded with `seed` (train) or `seed + 1` (test): the data depend on the
// options only, never on torch's global generator, which they leave untouched.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>
#include <vector>

#include "genfw/gaussian_mixture.hpp"
#include "genfw/sdk.hpp"

namespace genfw_toy2d {
namespace {

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

struct Points {
  torch::Tensor x;         // float64 [N, D]
  torch::Tensor y;         // int64 [N] or undefined
  int64_t num_classes = 0;
  double bound = 0;        // |coordinate| ≤ bound except for Gaussian tails beyond 6σ
};

torch::Tensor circle(const torch::Tensor& angle) { return torch::stack({angle.cos(), angle.sin()}, 1); }

// Mixture Σ w_k N(μ_k, s_k² I): component k ~ Categorical(w), then μ_k + s_k ε.
Points gmm(const genfw::GaussianMixture& mixture, int64_t n, at::Generator& gen) {
  Points p;
  p.y = torch::multinomial(mixture.weights, n, /*replacement=*/true, gen);
  auto eps = torch::randn({n, mixture.dim()}, gen, f64);
  p.x = mixture.means.index_select(0, p.y) + mixture.stds.index_select(0, p.y).unsqueeze(1) * eps;
  p.num_classes = mixture.means.size(0);
  p.bound = (mixture.means.abs().amax(1) + 6.0 * mixture.stds).max().item<double>();
  return p;
}

// Modes at scale·(cos 2πi/8, sin 2πi/8), each N(mode, mode_std² I).
Points eight_gaussians(int64_t n, double scale, double mode_std, at::Generator& gen) {
  Points p;
  p.y = torch::randint(0, 8, {n}, gen, torch::kInt64);
  auto centers = scale * circle(p.y.to(torch::kFloat64) * (2 * M_PI / 8));
  p.x = centers + mode_std * torch::randn({n, 2}, gen, f64);
  p.num_classes = 8;
  p.bound = scale + 6.0 * mode_std;
  return p;
}

// make_moons: outer (cos t, sin t), inner (1 − cos t, 1/2 − sin t), t ~ U[0, π],
// noise added in those coordinates (as scikit-learn does), then ×2 − (1, 0.2)
// as FFJORD places it: x ∈ [−3, 3], y ∈ [−1.2, 1.8] before noise. Label = moon.
Points two_moons(int64_t n, double noise, at::Generator& gen) {
  Points p;
  p.y = torch::randint(0, 2, {n}, gen, torch::kInt64);
  auto t = M_PI * torch::rand({n}, gen, f64);
  auto outer = torch::stack({t.cos(), t.sin()}, 1);
  auto inner = torch::stack({1.0 - t.cos(), 0.5 - t.sin()}, 1);
  auto raw = torch::where(p.y.unsqueeze(1) == 0, outer, inner) + noise * torch::randn({n, 2}, gen, f64);
  p.x = raw * 2.0 - torch::tensor({1.0, 0.2}, f64);
  p.num_classes = 2;
  p.bound = 3.0 + 2.0 * 6.0 * noise;
  return p;
}

// make_swiss_roll's (x, z): t ~ 1.5π(1 + 2U), (t cos t, t sin t) / 5, plus noise
// in these output coordinates. Unlabelled.
Points swiss_roll(int64_t n, double noise, at::Generator& gen) {
  Points p;
  auto t = 1.5 * M_PI * (1.0 + 2.0 * torch::rand({n}, gen, f64));
  p.x = (t.unsqueeze(1) * circle(t)) / 5.0 + noise * torch::randn({n, 2}, gen, f64);
  p.bound = 4.5 * M_PI / 5.0 + 6.0 * noise;
  return p;
}

// FFJORD: x1 ~ U[−2, 2); x2 ~ U[0, 1) − 2·Bernoulli(1/2) + (⌊x1⌋ mod 2); both ×2.
// Every point has ⌊x1/2⌋ + ⌊x2/2⌋ even. Unlabelled, no noise.
Points checkerboard(int64_t n, at::Generator& gen) {
  Points p;
  auto x1 = torch::rand({n}, gen, f64) * 4.0 - 2.0;
  auto x2 = torch::rand({n}, gen, f64) - torch::randint(0, 2, {n}, gen, f64) * 2.0;
  x2 = x2 + torch::remainder(torch::floor(x1), 2.0);
  p.x = torch::stack({x1, x2}, 1) * 2.0;
  p.bound = 4.0;
  return p;
}

// Ring r ~ U{0..3} of radius 0.75(r + 1), angle ~ U[0, 2π), plus noise. Label = ring.
Points rings(int64_t n, double noise, at::Generator& gen) {
  Points p;
  p.y = torch::randint(0, 4, {n}, gen, torch::kInt64);
  auto radius = 0.75 * (p.y.to(torch::kFloat64) + 1.0);
  auto angle = 2 * M_PI * torch::rand({n}, gen, f64);
  p.x = radius.unsqueeze(1) * circle(angle) + noise * torch::randn({n, 2}, gen, f64);
  p.num_classes = 4;
  p.bound = 3.0 + 6.0 * noise;
  return p;
}

class Toy2d : public genfw::Dataset {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .choice("distribution", "gmm", {"gmm", "eight_gaussians", "two_moons", "swiss_roll", "checkerboard", "rings"},
                "which 2-D distribution")
        .integer("size", 10000, "number of points in the split", genfw::at_least(1))
        .integer("seed", 0, "seed of the points (train: seed, test: seed + 1)", genfw::at_least(0))
        .matrix("means", {{-5.0, -5.0}, {5.0, 5.0}}, "gmm: component means [K, D] (D = 2 for 2-D data)")
        .reals("weights", {0.2, 0.8}, "gmm: component weights (normalised to sum 1)", genfw::at_least(0))
        .reals("stds", {1.0}, "gmm: per-component std, one value or one per component", genfw::at_least(0))
        .real("noise", 0.05, "two_moons, swiss_roll, rings: std of the added Gaussian noise", genfw::at_least(0))
        .real("scale", 2.0, "eight_gaussians: radius of the circle of modes (WGAN-GP: 2)", genfw::at_least(0))
        .real("mode_std", 0.02, "eight_gaussians: std of each mode (WGAN-GP: 0.02)", genfw::at_least(0));
  }

  Toy2d(const genfw::Options& options, const genfw::BuildContext& context) {
    const std::string& owner = options.owner();
    const std::string distribution = options.string("distribution");
    const int64_t n = options.integer("size");
    const int64_t seed = options.integer("seed") + (context.split == "test" ? 1 : 0);
    const double noise = options.real("noise");
    at::Generator gen = at::detail::createCPUGenerator(uint64_t(seed));

    Points p;
    if (distribution == "gmm") {
      const auto& means = options.matrix("means");
      const auto weights = options.reals("weights");
      const auto stds = options.reals("stds");
      GENFW_CHECK(weights.size() == means.size(), owner, ": option 'weights' has ", weights.size(),
                  " values but 'means' has ", means.size(), " rows");
      GENFW_CHECK(stds.size() == 1 || stds.size() == means.size(), owner, ": option 'stds' needs 1 or ",
                  means.size(), " values (one per mean), got ", stds.size());
      for (double w : weights) GENFW_CHECK(w > 0, owner, ": option 'weights' must be > 0, got ", w);
      for (double s : stds) GENFW_CHECK(s > 0, owner, ": option 'stds' must be > 0, got ", s);
      try {
        p = gmm(genfw::GaussianMixture::from_options(means, weights, stds), n, gen);
      } catch (const genfw::Error& e) {
        throw genfw::Error(owner + ": options 'means'/'weights'/'stds': " + e.what());
      }
    } else if (distribution == "eight_gaussians") {
      p = eight_gaussians(n, options.real("scale"), options.real("mode_std"), gen);
    } else if (distribution == "two_moons") {
      p = two_moons(n, noise, gen);
    } else if (distribution == "swiss_roll") {
      p = swiss_roll(n, noise, gen);
    } else if (distribution == "checkerboard") {
      p = checkerboard(n, gen);
    } else {
      p = rings(n, noise, gen);
    }
    x_ = p.x.to(torch::kFloat32).contiguous();
    y_ = p.y;

    // Reported range: the symmetric box [−B, B] with B = ⌈analytic bound⌉, the
    // bound being the support for bounded shapes and 6 std beyond the farthest
    // mode for Gaussian parts. It depends on the options only, so train and
    // test report the same range. Should a tail point ever fall outside, B
    // grows to ⌈max |coordinate|⌉ so that the data stay inside the range.
    double bound = std::ceil(p.bound);
    double max_abs = x_.abs().max().item<double>();
    if (max_abs > bound) bound = std::ceil(max_abs);
    info_.name = "toy2d";
    info_.shape = {x_.size(1)};
    info_.low = -bound;
    info_.high = bound;
    info_.num_classes = p.num_classes;
    info_.discrete_levels = false;
  }

  genfw::DataInfo info() const override { return info_; }
  int64_t size() const override { return x_.size(0); }

  genfw::Batch get(const torch::Tensor& indices) override {
    GENFW_CHECK(indices.dim() == 1, "dataset 'toy2d': indices must be 1-D, got ", indices.dim(), "-D");
    auto index = indices.to(torch::kCPU, torch::kInt64);
    if (index.numel() > 0) {
      int64_t lo = index.min().item<int64_t>(), hi = index.max().item<int64_t>();
      GENFW_CHECK(lo >= 0 && hi < size(), "dataset 'toy2d': index out of range [0, ", size(), "): got ",
                  lo < 0 ? lo : hi);
    }
    genfw::Batch batch;
    batch.x = x_.index_select(0, index);
    if (y_.defined()) batch.y = y_.index_select(0, index);
    return batch;
  }

 private:
  torch::Tensor x_;  // float32 [N, D]
  torch::Tensor y_;  // int64 [N] (component / moon / ring index) or undefined
  genfw::DataInfo info_;
};

}  // namespace
}  // namespace genfw_toy2d

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_toy2d::Toy2d>(
      "toy2d", genfw::Kind::dataset,
      "seeded 2-D toys: Song & Ermon 2019 mixture, 8 Gaussians, moons, swiss roll, checkerboard, rings (FFJORD)");
}
