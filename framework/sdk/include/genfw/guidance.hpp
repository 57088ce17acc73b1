#pragma once
/// Guidance as wrappers of a denoiser (genfw/denoiser.hpp), so every sampler
/// that takes a denoiser is guided the same way: classifier-free guidance (Ho &
/// Salimans 2022) of a class-conditional model and classifier guidance
/// (Dhariwal & Nichol 2021) with the run's classifier (SampleContext::classifier,
/// from the experiment's [guidance] table). And the one place a sampler gets
/// its denoiser: sampling_denoiser.
#include <memory>

#include "genfw/denoiser.hpp"
#include "genfw/options.hpp"
#include "genfw/sampler.hpp"

namespace genfw {

/// The options of every sampler that takes a denoiser (one declaration):
/// guidance_scale (default 0 = off) and discrete_time (nearest | interpolated,
/// default nearest).
GENFW_API Schema denoiser_schema();

/// Class labels for `n` samples: context.labels when given, else 0, 1, ..., C−1, 0, ...
GENFW_API torch::Tensor sampling_labels(const SampleContext& context, int64_t n, int64_t num_classes);

/// Classifier-free guidance: D̃ = D(x,σ|∅) + s·(D(x,σ|y) − D(x,σ|∅)), one batched
/// call on [x; x] with labels [y; ∅], which costs 2 evaluations. Linear in D, so
/// the same as guiding ε or the score.
class GENFW_API ClassifierFreeGuidance final : public Denoiser {
 public:
  /// `conditional`: a class-conditional model's denoiser; labels [N] int64.
  ClassifierFreeGuidance(std::shared_ptr<ModelDenoiser> conditional, torch::Tensor labels, double scale);
  torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma) override;
  int64_t cost() const override { return 2; }

 private:
  std::shared_ptr<ModelDenoiser> conditional_;
  torch::Tensor labels_;
  double scale_;
};

/// Classifier guidance in VE coordinates: D̃ = D + s·σ²·∇x log p(y | √ᾱ·x, t(σ)),
/// ᾱ = 1/(1+σ²), t(σ) the classifier's own timestep for σ. At a grid σ_t this is
/// Dhariwal & Nichol's ε̃ = ε − √(1−ᾱ_t)·s·∇_{x_t} log p(y | x_t, t) (eq. 14).
/// Differentiates through the classifier whatever the caller's grad or inference
/// mode. Costs the wrapped denoiser's evaluations + 1.
class GENFW_API ClassifierGuidance final : public Denoiser {
 public:
  /// Refuses a model that offers no 'classifier'.
  ClassifierGuidance(std::shared_ptr<Denoiser> inner, Model& classifier, torch::Tensor labels, double scale,
                     DiscreteTime rounding);
  torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma) override;
  int64_t cost() const override { return inner_->cost() + 1; }

 private:
  std::shared_ptr<Denoiser> inner_;
  NoisyClassifier* classifier_;
  ScheduleTime time_;
  torch::Tensor labels_;
  double scale_;
};

/// The denoiser a sampler uses: context.model's, conditioned on the context's
/// labels (a class-conditional model), wrapped by classifier-free guidance
/// (conditional model, guidance_scale > 0) and classifier guidance
/// (context.classifier set, guidance_scale > 0), every evaluation counted in
/// context.nfe through SampleContext::count_evaluations. `options` holds
/// denoiser_schema()'s keys.
GENFW_API std::shared_ptr<Denoiser> sampling_denoiser(SampleContext& context, const Options& options);

}  // namespace genfw
