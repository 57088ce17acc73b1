#pragma once
/// Autoregressive density models (PixelCNN++): p(x) = Π_t p(x_t | x_<t) over positions
/// in a fixed order, sampled one position at a time with one network pass each. An
/// optional part of the density capability, reached with as<AutoregressiveModel>, so
/// a sampler can give it the run's per-sample noise and see each step, and a test
/// can check that no conditional reads its own or a later position.
#include "genfw/sampler.hpp"

namespace genfw {

class GENFW_API AutoregressiveModel {
 public:
  virtual ~AutoregressiveModel();
  /// The network's output at every position for data x [N, shape...] (data space):
  /// [N, P, spatial...], position t's P parameters of p(x_t | x_<t), which must not
  /// depend on x at t or after.
  virtual torch::Tensor conditional_params(const torch::Tensor& x) = 0;
  /// context.num_samples samples [N, shape...] in data space. All randomness comes from
  /// context.noise (one draw per position, so sample i is independent of the batch);
  /// every network pass adds 1 to context.nfe; every position is reported through
  /// context.report (index = position, total = positions), which is where progress
  /// is drawn and a stop request is noticed.
  virtual torch::Tensor sample_autoregressively(SampleContext& context) = 0;
};

}  // namespace genfw
