#include "genfw/denoiser.hpp"

#include <cmath>

#include "genfw/diffusion.hpp"
#include "genfw/error.hpp"
#include "genfw/model.hpp"

namespace genfw {

DiscreteTime parse_discrete_time(const std::string& name) {
  if (name == "nearest") return DiscreteTime::nearest;
  if (name == "interpolated") return DiscreteTime::interpolated;
  throw Error("unknown discrete time '" + name + "'; expected nearest or interpolated");
}

// ---- σ → timestep -------------------------------------------------------------

ScheduleTime::ScheduleTime(const DiffusionSchedule& schedule, DiscreteTime rounding)
    : log_sigmas_(schedule.ve_sigmas().log()), rounding_(rounding) {}

torch::Tensor ScheduleTime::timesteps(const torch::Tensor& sigma) {
  if (log_sigmas_.device() != sigma.device()) log_sigmas_ = log_sigmas_.to(sigma.device());  // once per device
  const auto log_sigma = sigma.detach().to(torch::kFloat64).log().reshape({-1});
  const int64_t last = log_sigmas_.size(0) - 1;
  if (last == 0) {
    return torch::zeros_like(log_sigma, rounding_ == DiscreteTime::nearest ? torch::kLong : torch::kFloat32);
  }
  // The two levels around σ, log σ_low ≤ log σ < log σ_high, by binary search (the first and
  // last pair outside the range), and where σ lies between them, clamped to [0, 1].
  const auto low = (torch::searchsorted(log_sigmas_, log_sigma, /*out_int32=*/false, /*right=*/true) - 1)
                       .clamp(0, last - 1);
  const auto low_log = log_sigmas_.index_select(0, low), high_log = log_sigmas_.index_select(0, low + 1);
  const auto fraction = ((log_sigma - low_log) / (high_log - low_log)).clamp(0, 1);
  if (rounding_ == DiscreteTime::nearest) return low + (fraction > 0.5).to(torch::kLong);
  return (low.to(torch::kFloat64) + fraction).to(torch::kFloat32);
}

// ---- the denoiser -------------------------------------------------------------

Denoiser::~Denoiser() = default;

torch::Tensor Denoiser::sigma_like(const torch::Tensor& x, double sigma) const {
  return torch::full({x.size(0)}, sigma, x.options());  // a fill on x's device, no copy
}

torch::Tensor Denoiser::operator()(const torch::Tensor& x, const torch::Tensor& sigma) {
  if (hook_) hook_(cost());
  return denoise(x, sigma);
}

torch::Tensor Denoiser::operator()(const torch::Tensor& x, double sigma) { return (*this)(x, sigma_like(x, sigma)); }

torch::Tensor Denoiser::score(const torch::Tensor& x, const torch::Tensor& sigma) {
  const auto s = per_sample(sigma, x);
  return ((*this)(x, sigma) - x) / (s * s);
}

torch::Tensor Denoiser::score(const torch::Tensor& x, double sigma) {
  return ((*this)(x, sigma) - x) / (sigma * sigma);
}

torch::Tensor Denoiser::eps(const torch::Tensor& x, const torch::Tensor& sigma) {
  return (x - (*this)(x, sigma)) / per_sample(sigma, x);
}

torch::Tensor Denoiser::eps(const torch::Tensor& x, double sigma) { return (x - (*this)(x, sigma)) / sigma; }

torch::Tensor Denoiser::eps_vp(const torch::Tensor& x_t, double alpha_bar) {
  return eps(x_t / std::sqrt(alpha_bar), std::sqrt((1 - alpha_bar) / alpha_bar));
}

DiffusionSchedule vp_schedule(const NoiseLevels& levels) {
  if (levels.schedule != nullptr) return *levels.schedule;
  const auto alpha_bar = (1 + levels.sigmas.flip(0).pow(2)).reciprocal();  // ascending σ: t = 0..L−1
  const auto previous = torch::cat({torch::ones({1}, torch::kFloat64), alpha_bar.slice(0, 0, -1)});
  return DiffusionSchedule::from_betas(1 - alpha_bar / previous);
}

namespace {
NoiseLevels levels_of(Model& model) {
  NoiseLevels levels;
  if (auto* direct = as<ScoreModel>(model)) {
    levels.sigmas = direct->noise_levels().to(torch::kCPU, torch::kFloat64);
  } else if (auto* predictor = as<NoisePredictor>(model)) {
    levels.sigmas = predictor->schedule().ve_sigmas().flip(0);
    levels.schedule = &predictor->schedule();
  } else {
    throw Error("model offers neither 'score' nor 'noise-prediction', so it has no denoiser");
  }
  GENFW_CHECK(levels.sigmas.numel() >= 1, "the model declares no noise levels");
  levels.sigma_min = levels.sigmas.min().item<double>();
  levels.sigma_max = levels.sigmas.max().item<double>();
  return levels;
}
}  // namespace

ModelDenoiser::ModelDenoiser(Model& model, DiscreteTime rounding)
    : Denoiser(levels_of(model)), score_model_(as<ScoreModel>(model)) {
  if (score_model_ == nullptr) {
    noise_predictor_ = as<NoisePredictor>(model);
    time_ = std::make_unique<ScheduleTime>(noise_predictor_->schedule(), rounding);
  }
}

int64_t ModelDenoiser::num_classes() const {
  return noise_predictor_ != nullptr ? noise_predictor_->num_classes() : 0;
}

torch::Tensor ModelDenoiser::denoise_given(const torch::Tensor& x, const torch::Tensor& sigma,
                                           const torch::Tensor& labels) {
  const auto s = per_sample(sigma, x);
  // Tweedie (Efron 2011; Karras et al. 2022 eq. 3): D = x + σ²·∇x log p_σ(x).
  if (score_model_ != nullptr) return x + s * s * score_model_->score(x, sigma);
  // The VP point of the same noise: ᾱ = 1/(1+σ²), x_t = √ᾱ·x (k-diffusion's c_in), the
  // requested σ, not the timestep's, so D does not jump between levels.
  const auto alpha_bar = (1 + sigma.to(x.dtype()).pow(2)).reciprocal();
  const auto x_t = x * per_sample(alpha_bar.sqrt(), x);
  const auto output = noise_predictor_->predict(x_t, time_->timesteps(sigma), labels);
  return x - s * eps_from_prediction(noise_predictor_->prediction_type(), output, x_t, alpha_bar);
}

}  // namespace genfw
