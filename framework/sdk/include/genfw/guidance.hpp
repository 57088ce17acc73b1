#pragma once
/// Guided ε for every sampler of a noise-prediction model, written once:
/// prediction-type conversion, classifier-free guidance (Ho & Salimans 2022) and
/// classifier guidance (Dhariwal & Nichol 2021) with the run's classifier
/// (SampleContext::classifier, from the experiment's [guidance] table).
#include <vector>

#include "genfw/options.hpp"
#include "genfw/sampler.hpp"

namespace genfw {

/// The guidance option of the samplers that use GuidedEps.
GENFW_API Schema guidance_schema();

/// Class labels for `n` samples: context.labels when given, else 0, 1, ..., C−1, 0, ...
GENFW_API torch::Tensor sampling_labels(const SampleContext& context, int64_t n, int64_t num_classes);

/// Classifier guidance in ε form (Dhariwal & Nichol 2021, eq. 14):
/// ε' = ε − √(1−ᾱ_t) · s · ∇x log p(y | x_t, t). Differentiates through the
/// classifier whatever the caller's grad mode.
GENFW_API torch::Tensor classifier_guided_eps(const torch::Tensor& eps, const torch::Tensor& x_t,
                                              const torch::Tensor& t, Model& classifier, const torch::Tensor& y,
                                              double scale, const torch::Tensor& alpha_bar);

/// The network view samplers use: ε̃(x_t, t) after prediction-type conversion,
/// classifier-free guidance (class-conditional model) and classifier guidance
/// (context.classifier set), counting NFE in context.nfe.
class GENFW_API GuidedEps {
 public:
  /// Refuses a model without noise prediction, and a classifier whose schedule
  /// differs from the model's.
  GuidedEps(SampleContext& context, double guidance_scale);

  const DiffusionSchedule& schedule() const;
  PredictionType prediction_type() const;
  /// The labels samples are drawn for (undefined when unconditional and unguided).
  const torch::Tensor& labels() const { return labels_; }

  /// ε̃ at x_t for one timestep t (all samples share it).
  torch::Tensor operator()(const torch::Tensor& x_t, int64_t t);

 private:
  SampleContext& context_;
  double scale_;
  NoisePredictor* net_ = nullptr;
  Model* classifier_ = nullptr;
  torch::Tensor labels_;
  std::vector<double> alphas_cumprod_;  // the schedule's ᾱ_t on the host
};

}  // namespace genfw
