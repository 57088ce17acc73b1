#pragma once
/// Test helpers shared by the diffusion plugins' tests (header-only, not a plugin).
#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

#include <map>
#include <string>

namespace genfw_diffusion::test {

/// Runs `sampler` on `model` for `n` samples of shape `shape`.
inline torch::Tensor run_sampler(genfw::Sampler& sampler, genfw::Model& model, int64_t n,
                                 std::vector<int64_t> shape, torch::Tensor x_init = {},
                                 torch::Tensor labels = {},
                                 std::vector<genfw::StepRecord>* records = nullptr,
                                 double low = -1.0, double high = 1.0) {
  genfw::SampleContext context;
  context.model = &model;
  context.num_samples = n;
  context.data.shape = std::move(shape);
  context.data.low = low;
  context.data.high = high;
  context.x_init = x_init;
  context.labels = labels;
  if (records != nullptr) context.on_step = [records](const genfw::StepRecord& r) { records->push_back(r); };
  std::unique_ptr<torch::NoGradGuard> guard;
  if (!sampler.needs_gradients()) guard = std::make_unique<torch::NoGradGuard>();
  return sampler.sample(context);
}

/// Per-mode statistics of 2-D samples assigned to the nearest mean.
struct ModeStats {
  std::vector<double> weight;
  std::vector<torch::Tensor> mean, std;  // [2] each
};
inline ModeStats mode_stats(const genfw::GaussianMixture& mixture, const torch::Tensor& x) {
  auto xd = x.to(torch::kFloat64).cpu();
  auto k = mixture.nearest_component(xd);
  ModeStats s;
  for (int64_t c = 0; c < mixture.means.size(0); ++c) {
    auto mask = k == c;
    auto xs = xd.index({mask});
    s.weight.push_back(mask.to(torch::kFloat64).mean().item<double>());
    s.mean.push_back(xs.mean(0));
    s.std.push_back(xs.std(0));
  }
  return s;
}

}  // namespace genfw_diffusion::test
