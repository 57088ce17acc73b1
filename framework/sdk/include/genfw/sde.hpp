#pragma once
/// The SDE view of score-based models (Song et al. 2021, "Score-Based Generative
/// Modeling through Stochastic Differential Equations"; score_sde's sde_lib.py),
/// written once for every sampler and metric:
///
///   forward SDE      dx = f(x, t) dt + g(t) dw,             t ∈ [0, 1]
///   reverse SDE      dx = [f − g² ∇x log p_t(x)] dt + g dw̄  (eq. 6)
///   probability flow dx/dt = f − ½ g² ∇x log p_t(x)          (eq. 13)
///
/// VE, VP and sub-VP are linear, f(x, t) = a(t)·x, so x(t) | x(0) is Gaussian,
/// N(m(t)·x(0), s(t)² I) (App. B). Times are host doubles shared by the batch:
/// samplers keep their loops free of device syncs.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genfw/denoiser.hpp"
#include "genfw/export.hpp"
#include "genfw/noise.hpp"
#include "genfw/options.hpp"
#include "genfw/schedules.hpp"

namespace genfw {

/// One discrete forward step x_{i+1} = x_i + f_i·x_i + G_i·z of an SDE over
/// [t − Δt, t] (score_sde's SDE.discretize): the reverse-diffusion predictor
/// (Song et al. 2021, eq. 46) steps back with it.
struct SdeStep {
  double drift_coefficient = 0;  ///< f_i: the drift increment is f_i·x
  double noise_std = 0;          ///< G_i
};

class GENFW_API Sde {
 public:
  virtual ~Sde();
  virtual std::string name() const = 0;
  /// a(t) of the linear drift f(x, t) = a(t)·x.
  virtual double drift_coefficient(double t) const = 0;
  /// g(t).
  virtual double diffusion(double t) const = 0;
  /// m(t): E[x(t) | x(0)] = m(t)·x(0).
  virtual double mean_coefficient(double t) const = 0;
  /// s(t): the std of x(t) | x(0).
  virtual double marginal_std(double t) const = 0;
  /// The prior p_1 = N(0, prior_std² I).
  virtual double prior_std() const = 0;
  /// Discrete step over [t − dt, t]; default Euler–Maruyama (f_i = a(t)·dt, G_i = g(t)·√dt).
  virtual SdeStep discretize(double t, double dt) const;

  torch::Tensor drift(const torch::Tensor& x, double t) const { return drift_coefficient(t) * x; }
  /// The VE level σ̃(t) = s(t)/m(t): x(t)/m(t) is the data plus N(0, σ̃² I) noise.
  double ve_sigma(double t) const { return marginal_std(t) / mean_coefficient(t); }
  /// x(1) ~ prior, [noise.count(), sample_shape...] on `options`' device, the next draw of `noise`.
  torch::Tensor prior_sample(SampleNoise& noise, at::IntArrayRef sample_shape,
                             const torch::TensorOptions& options) const;
  /// log N(x; 0, prior_std² I) per sample [N] (nats, every non-batch dimension summed).
  torch::Tensor prior_log_prob(const torch::Tensor& x) const;
};

/// Variance exploding (NCSN, Song & Ermon 2019): σ(t) = σ_min (σ_max/σ_min)^t,
/// f = 0, g = σ(t) √(2 log(σ_max/σ_min)), m = 1, s = σ(t) (score_sde's VESDE),
/// prior N(0, σ_max² I).
class GENFW_API VeSde : public Sde {
 public:
  VeSde(double sigma_min, double sigma_max);
  std::string name() const override { return "ve"; }
  double drift_coefficient(double) const override { return 0.0; }
  double diffusion(double t) const override;
  double mean_coefficient(double) const override { return 1.0; }
  double marginal_std(double t) const override { return sigma(t); }
  double prior_std() const override { return sigma_max_; }
  /// SMLD's discrete chain (Song et al. 2021, eq. 45 / App. C): G_i = √(σ(t)² − σ(t − dt)²).
  SdeStep discretize(double t, double dt) const override;
  double sigma(double t) const;
  double sigma_min() const { return sigma_min_; }
  double sigma_max() const { return sigma_max_; }

 private:
  double sigma_min_, sigma_max_;
};

/// Variance preserving (DDPM as an SDE): β(t) = β_min + t(β_max − β_min),
/// f = −½ β(t) x, g = √β(t), log m(t) = −¼ t² (β_max − β_min) − ½ t β_min,
/// s = √(1 − m²), prior N(0, I) (score_sde's VPSDE; Song et al. 2021 eq. 11, 29).
class GENFW_API VpSde : public Sde {
 public:
  /// `discrete_steps` > 0: the continuous limit of a DDPM with that many linear β
  /// steps β_i = β(t_i)/T (score_sde's correspondence β_min = T·β_1, β_max = T·β_T).
  VpSde(double beta_min, double beta_max, int64_t discrete_steps = 0);
  /// The VP SDE whose discretisation is `schedule` (it must be a linear β schedule).
  static VpSde for_schedule(const DiffusionSchedule& schedule);
  std::string name() const override { return "vp"; }
  double drift_coefficient(double t) const override { return -0.5 * beta(t); }
  double diffusion(double t) const override;
  double mean_coefficient(double t) const override;
  double marginal_std(double t) const override;
  double prior_std() const override { return 1.0; }
  /// DDPM's ancestral chain (Ho et al. 2020; score_sde's VPSDE.discretize): with
  /// β_i = 1 − m(t)²/m(t − dt)² (so ∏(1 − β_i) = m², the discrete-DDPM limit),
  /// f_i = √(1 − β_i) − 1, G_i = √β_i.
  SdeStep discretize(double t, double dt) const override;
  double beta(double t) const { return beta_min_ + t * (beta_max_ - beta_min_); }
  double beta_min() const { return beta_min_; }
  double beta_max() const { return beta_max_; }
  int64_t discrete_steps() const { return discrete_steps_; }

 protected:
  double beta_min_, beta_max_;
  int64_t discrete_steps_;
};

/// sub-VP (Song et al. 2021, eq. 12): f as VP, g = √(β(t)(1 − e^{−2∫₀ᵗβ})),
/// m as VP, s = 1 − m², prior N(0, I). Discretised by Euler–Maruyama.
class GENFW_API SubVpSde : public VpSde {
 public:
  SubVpSde(double beta_min, double beta_max) : VpSde(beta_min, beta_max, 0) {}
  std::string name() const override { return "subvp"; }
  double diffusion(double t) const override;
  double marginal_std(double t) const override;
  SdeStep discretize(double t, double dt) const override { return Sde::discretize(t, dt); }
};

/// The options every SDE sampler and the ODE likelihood share (one declaration):
/// sde (auto | ve | vp | subvp), sigma_min/sigma_max, beta_min/beta_max, eps.
GENFW_API Schema sde_schema();
/// Checks what sde_schema()'s ranges cannot (σ_min < σ_max, β_min ≤ β_max when both
/// are set), naming options.owner() and the keys. For constructors.
GENFW_API void check_sde_options(const Options& options);

/// The SDE an `Options` table built from sde_schema() asks for, with the model
/// filling the defaults: auto = VP from a noise predictor's (linear) schedule,
/// else VE over a score model's levels (σ_min, σ_max = smallest, largest).
GENFW_API std::unique_ptr<Sde> make_sde(const Options& options, const Denoiser& denoiser);

/// A denoiser seen through an SDE (written once for every SDE sampler and the ODE
/// likelihood): x(t)/m(t) is the data plus N(0, σ̃² I) noise, σ̃(t) = s(t)/m(t)
/// (Sde::ve_sigma), so ∇x log p_t(x) = ∇ log p_σ̃(x/m)/m by the chain rule, whatever
/// the model and the SDE. One counted denoiser call per method call.
class GENFW_API SdeView {
 public:
  SdeView(Denoiser& denoiser, const Sde& sde) : denoiser_(&denoiser), sde_(&sde) {}
  /// ∇x log p_t(x).
  torch::Tensor score(const torch::Tensor& x, double t);
  /// Probability-flow drift f(x, t) − ½ g(t)² ∇x log p_t(x) (Song et al. 2021, eq. 13).
  torch::Tensor probability_flow(const torch::Tensor& x, double t);
  /// Tweedie's E[x(0) | x(t)] = (x + s(t)²·∇x log p_t(x))/m(t) = D(x/m, σ̃).
  torch::Tensor denoised(const torch::Tensor& x, double t);
  /// The same from a score already evaluated at (x, t): no evaluation.
  torch::Tensor denoised_from_score(const torch::Tensor& x, const torch::Tensor& score, double t) const;
  const Sde& sde() const { return *sde_; }

 private:
  Denoiser* denoiser_;
  const Sde* sde_;
};

/// Result of an adaptive ODE solve.
struct OdeSolution {
  torch::Tensor y;          ///< state at t1
  int64_t evaluations = 0;  ///< calls of the right-hand side
  int64_t accepted = 0, rejected = 0;
};

/// dy/dt = rhs(y, t) from t0 to t1 (either direction) with the Dormand–Prince
/// 5(4) pair (Dormand & Prince 1980; Hairer, Nørsett & Wanner I §II.5), first
/// same as last, step size from the embedded error, whose RMS norm over every
/// entry of y is scaled by atol + rtol·max(|y_n|, |y_{n+1}|) (scipy's RK45, which
/// score_sde's ODE sampler and likelihood call). `on_step(t, y)` after each
/// accepted step, when given.
GENFW_API OdeSolution solve_dopri5(const std::function<torch::Tensor(const torch::Tensor&, double)>& rhs,
                                   torch::Tensor y0, double t0, double t1, double rtol, double atol,
                                   const std::function<void(double, const torch::Tensor&)>& on_step = {});

/// A vector field's value and divergence per sample.
struct FieldDivergence {
  torch::Tensor value;       ///< F(x), x's shape
  torch::Tensor divergence;  ///< ∇·F(x), [N]
};

/// ∇·F(x) for F acting sample-wise on x [N, ...], by autograd whatever the caller's
/// grad mode: with no probes the exact trace of ∂F/∂x (one backward pass per
/// dimension: for small D), else Hutchinson's estimator, the mean over the probes v
/// (each x's shape; Rademacher or Gaussian) of vᵀ(∂F/∂x)v (Hutchinson 1989;
/// Grathwohl et al. 2019, FFJORD), one backward pass each. F must be differentiable.
GENFW_API FieldDivergence divergence(const std::function<torch::Tensor(const torch::Tensor&)>& field,
                                     const torch::Tensor& x, const std::vector<torch::Tensor>& probes);

/// Result of the probability-flow likelihood.
struct OdeLikelihood {
  torch::Tensor log_prob;   ///< log p_eps(x) per sample [N], nats (float64)
  torch::Tensor prior_point;  ///< x(1)
  OdeSolution solution;     ///< the solver's counts (evaluations = score NFE)
};

/// log p_eps(x) through the probability-flow ODE with the instantaneous change of
/// variables (Chen et al. 2018, Thm. 1; Song et al. 2021 App. D.2; score_sde's
/// likelihood.py): integrate [x, Δ] from t = eps to 1 with dx/dt = f − ½g²∇log p_t and
/// dΔ/dt = ∇·(dx/dt) (exact or Hutchinson, as `divergence`, probes fixed over the
/// path), then log p_eps(x) = log p_1(x(1)) + Δ(1), p_1 the SDE's prior.
GENFW_API OdeLikelihood ode_log_likelihood(SdeView& view, const torch::Tensor& x, double eps, double rtol,
                                           double atol, const std::vector<torch::Tensor>& probes);

}  // namespace genfw
