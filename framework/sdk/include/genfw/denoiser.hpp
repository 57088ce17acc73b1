#pragma once
/// The one view every sampler has of a model: a denoiser D(x, σ) ≈ E[x0 | x],
/// x = x0 + σ·n, n ~ N(0, I) (variance-exploding coordinates; Karras et al. 2022
/// §2 and k-diffusion's external.py). Built once from any model that defines a
/// score: a score model (D = x + σ²·s(x, σ), Tweedie) or a noise predictor of ε,
/// x0 or v (evaluated at x_t = x/√(1+σ²), the VP point with ᾱ = 1/(1+σ²), and
/// the timestep whose level σ_t = √((1−ᾱ_t)/ᾱ_t) is nearest to σ, or a fractional
/// one interpolated between the two around it). The score ∇x log p_σ(x) and ε are
/// derived from D here, in one place; the SDE view (genfw/sde.hpp) from them.
///
/// Every call counts its network evaluations through one hook, which the
/// sampling pipeline uses to poll a stop request, the other ranks' heartbeat and
/// progress: so a sampler stops within one network call whether or not it reports.
/// Everything stays on x's device: σ is never copied to the host.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "genfw/export.hpp"
#include "genfw/schedules.hpp"

namespace genfw {

class Model;
class ScoreModel;
class NoisePredictor;

/// How a discrete-time model (a noise predictor with timesteps 0..T−1) is asked
/// about a σ between its levels.
enum class DiscreteTime {
  nearest,       ///< the timestep whose σ_t is nearest in log σ (an int64 t)
  interpolated,  ///< t fractional, linear in log σ between the two levels around σ (a float t)
};
GENFW_API DiscreteTime parse_discrete_time(const std::string& name);

/// The timesteps of a β schedule at VE levels σ, on σ's device without a host
/// sync: σ_t = √((1−ᾱ_t)/ᾱ_t) is increasing in t, σ is looked up in log σ
/// (k-diffusion's DiscreteSchedule.sigma_to_t). alpha_bar_at maps an
/// interpolated t back to exactly σ (inside the schedule's range).
class GENFW_API ScheduleTime {
 public:
  ScheduleTime(const DiffusionSchedule& schedule, DiscreteTime rounding);
  /// σ [N] (any float dtype) → t [N]: int64 (nearest) or float32 (interpolated).
  torch::Tensor timesteps(const torch::Tensor& sigma);

 private:
  torch::Tensor log_sigmas_;  // log σ_t, t = 0..T−1, float64, on the device last asked for
  DiscreteTime rounding_;
};

/// The noise levels a denoiser answers at.
struct NoiseLevels {
  double sigma_min = 0;  ///< the smallest level the model was built or trained for
  double sigma_max = 0;  ///< the largest (the prior's std in VE coordinates)
  /// The model's own levels, descending, float64 on the CPU: a score model's
  /// noise_levels(), a noise predictor's σ_t for t = T−1..0.
  torch::Tensor sigmas;
  /// A noise predictor's β schedule (its discretisation); nullptr for a score model.
  const DiffusionSchedule* schedule = nullptr;
};

/// The discrete VP schedule of a denoiser's levels σ_0 < … < σ_{L−1}, for samplers
/// written on timesteps (DDPM, DDIM, DPM-Solver): ᾱ_k = 1/(1+σ_k²), β_k = 1 − ᾱ_k/ᾱ_{k−1}.
/// A noise predictor's own schedule, exactly; for a score model, its levels as timesteps.
GENFW_API DiffusionSchedule vp_schedule(const NoiseLevels& levels);

/// D(x, σ) and what derives from it. x: [N, ...] in VE coordinates; σ: [N] on
/// x's device, or a host double shared by the batch.
class GENFW_API Denoiser {
 public:
  /// Called with the evaluations one call costs, before they are made; may throw
  /// (a stop request, a dead rank) to end sampling there.
  using EvaluationHook = std::function<void(int64_t evaluations)>;

  virtual ~Denoiser();

  /// D(x, σ), counted: cost() evaluations reported to the hook first.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& sigma);
  torch::Tensor operator()(const torch::Tensor& x, double sigma);
  /// ∇x log p_σ(x) = (D − x)/σ² (Tweedie), counted.
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma);
  torch::Tensor score(const torch::Tensor& x, double sigma);
  /// ε = (x − D)/σ, the noise the denoiser removes, counted.
  torch::Tensor eps(const torch::Tensor& x, const torch::Tensor& sigma);
  torch::Tensor eps(const torch::Tensor& x, double sigma);
  /// ε at a VP point x_t = √ᾱ·x0 + √(1−ᾱ)·ε (DDPM's coordinates, ᾱ in (0, 1)): the
  /// denoiser at x_t/√ᾱ and σ = √((1−ᾱ)/ᾱ), counted.
  torch::Tensor eps_vp(const torch::Tensor& x_t, double alpha_bar);

  const NoiseLevels& levels() const { return levels_; }
  void set_evaluation_hook(EvaluationHook hook) { hook_ = std::move(hook); }

  /// The uncounted D(x, σ): what a wrapper calls on the denoiser it wraps.
  virtual torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma) = 0;
  /// Network evaluations one call costs (classifier-free guidance: 2).
  virtual int64_t cost() const { return 1; }

 protected:
  explicit Denoiser(NoiseLevels levels) : levels_(std::move(levels)) {}

 private:
  torch::Tensor sigma_like(const torch::Tensor& x, double sigma) const;

  NoiseLevels levels_;
  EvaluationHook hook_;
};

/// The denoiser of one model: one network evaluation per call, conditioned on
/// fixed labels (or none).
class GENFW_API ModelDenoiser final : public Denoiser {
 public:
  /// Refuses a model that offers neither 'score' nor 'noise-prediction'.
  /// `rounding` matters for noise predictors only (default: nearest timestep).
  explicit ModelDenoiser(Model& model, DiscreteTime rounding = DiscreteTime::nearest);

  torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma) override {
    return denoise_given(x, sigma, labels_);
  }
  /// D(x, σ | y) for labels y [N] (undefined: unconditional; a conditional model's
  /// label num_classes() means "no class"). Uncounted.
  torch::Tensor denoise_given(const torch::Tensor& x, const torch::Tensor& sigma, const torch::Tensor& labels);
  /// The labels later calls are conditioned on ([N] int64, or undefined).
  void condition_on(torch::Tensor labels) { labels_ = std::move(labels); }
  /// Classes of a class-conditional noise predictor, else 0.
  int64_t num_classes() const;

 private:
  ScoreModel* score_model_ = nullptr;
  NoisePredictor* noise_predictor_ = nullptr;
  std::unique_ptr<ScheduleTime> time_;  // noise predictors only
  torch::Tensor labels_;
};

}  // namespace genfw
