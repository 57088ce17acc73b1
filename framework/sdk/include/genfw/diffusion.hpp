#pragma once
/// What every model of the diffusion family (DDPM, Ho et al. 2020) declares and
/// reads the same way: its β-schedule and prediction-type options, so a trained
/// model is self-describing, and the per-step schedule lookups samplers need.
#include <string>
#include <vector>

#include "genfw/options.hpp"
#include "genfw/schedules.hpp"

namespace genfw {

/// The schedule options (one declaration for every noise-prediction model and
/// the noisy classifier): num_train_timesteps, beta_schedule, beta_start,
/// beta_end, prediction_type.
GENFW_API Schema diffusion_schema();

/// Resolved schedule options.
struct GENFW_API DiffusionSettings {
  DiffusionSchedule schedule;
  PredictionType prediction_type = PredictionType::epsilon;

  /// Reads diffusion_schema()'s keys; refuses beta_start > beta_end.
  static DiffusionSettings from_options(const Options& options);
};

/// ᾱ at timesteps t [N] (any device) as a tensor on t's device in the dtype of
/// `like`. The schedule goes to t's device, never t to the host: no device→host
/// sync per step. A floating-point t may be fractional (a denoiser's
/// interpolated time, genfw/denoiser.hpp): log σ_t = ½ log((1−ᾱ_t)/ᾱ_t) is then
/// linear between the timesteps around it, so ᾱ is exactly that of the σ it
/// was looked up for.
GENFW_API torch::Tensor alpha_bar_at(const DiffusionSchedule& schedule, const torch::Tensor& t,
                                     const torch::Tensor& like);

/// A schedule tensor as host numbers, read once before a sampling loop so that
/// the loop does no per-step tensor indexing or .item().
GENFW_API std::vector<double> host_values(const torch::Tensor& values);

}  // namespace genfw
