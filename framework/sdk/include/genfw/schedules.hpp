#pragma once
/// Noise schedules and the ε ↔ x0 ↔ v ↔ score conversions, written once for
/// every family (score_sde's sde_lib.py, diffusers' schedulers).
/// All schedule tensors are float64 on CPU; move what you need to the device.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

/// σ_1 > ... > σ_L, geometric from `sigma_begin` to `sigma_end` (NCSN, Song & Ermon 2019 §4.2).
GENFW_API torch::Tensor geometric_sigmas(double sigma_begin, double sigma_end, int64_t levels);

/// β_1..β_T. kind: "linear" (Ho et al. 2020), "scaled_linear" (linear in √β),
/// "squaredcos_cap_v2" (cosine, Nichol & Dhariwal 2021, β ≤ 0.999).
GENFW_API torch::Tensor beta_schedule(const std::string& kind, int64_t num_steps, double beta_start,
                                      double beta_end);
GENFW_API const std::vector<std::string>& beta_schedule_kinds();

/// Everything derived from β once: ᾱ, posterior q(x_{t-1} | x_t, x0) coefficients.
/// Index t runs 0..T-1 (diffusers' convention: t=0 is the least noisy step).
struct GENFW_API DiffusionSchedule {
  torch::Tensor betas, alphas, alphas_cumprod, alphas_cumprod_prev;
  torch::Tensor posterior_variance;        ///< β̃_t = β_t (1−ᾱ_{t−1}) / (1−ᾱ_t)
  torch::Tensor posterior_log_variance_clipped;
  torch::Tensor posterior_mean_coef1;      ///< coefficient of x0
  torch::Tensor posterior_mean_coef2;      ///< coefficient of x_t

  static DiffusionSchedule from_betas(const torch::Tensor& betas);
  int64_t num_steps() const { return betas.size(0); }
  /// σ_t = √((1−ᾱ_t)/ᾱ_t): the VE noise level of x_t/√ᾱ_t (DDPM ↔ NCSN bridge).
  torch::Tensor ve_sigmas() const;
};

/// How a noise-prediction network's output is to be read.
enum class PredictionType { epsilon, sample, v_prediction };
GENFW_API PredictionType parse_prediction_type(const std::string& name);
GENFW_API const char* prediction_type_name(PredictionType type);

/// Broadcasts a per-sample [N] coefficient against x [N, ...].
GENFW_API torch::Tensor per_sample(const torch::Tensor& coefficient, const torch::Tensor& like);

// VP process x_t = √ᾱ x0 + √(1−ᾱ) ε ; v = √ᾱ ε − √(1−ᾱ) x0 (Salimans & Ho 2022).
// alpha_bar is per-sample [N].
GENFW_API torch::Tensor x0_from_eps(const torch::Tensor& x_t, const torch::Tensor& eps,
                                    const torch::Tensor& alpha_bar);
GENFW_API torch::Tensor eps_from_x0(const torch::Tensor& x_t, const torch::Tensor& x0,
                                    const torch::Tensor& alpha_bar);
GENFW_API torch::Tensor eps_from_v(const torch::Tensor& x_t, const torch::Tensor& v,
                                   const torch::Tensor& alpha_bar);
GENFW_API torch::Tensor v_from_eps(const torch::Tensor& x0, const torch::Tensor& eps,
                                   const torch::Tensor& alpha_bar);
/// Model output of the given prediction type → ε.
GENFW_API torch::Tensor eps_from_prediction(PredictionType type, const torch::Tensor& output,
                                            const torch::Tensor& x_t,
                                            const torch::Tensor& alpha_bar);
/// VP score ∇ log p_t(x_t) = −ε / √(1−ᾱ_t), and back.
GENFW_API torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& alpha_bar);
GENFW_API torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& alpha_bar);

}  // namespace genfw
