#include "genfw/sde.hpp"

#include <algorithm>
#include <cmath>

#include "genfw/error.hpp"
#include "genfw/model.hpp"

namespace genfw {

// ---- the SDEs ---------------------------------------------------------------

Sde::~Sde() = default;

SdeStep Sde::discretize(double t, double dt) const {
  return {drift_coefficient(t) * dt, diffusion(t) * std::sqrt(dt)};
}

torch::Tensor Sde::prior_sample(SampleNoise& noise, at::IntArrayRef sample_shape,
                                const torch::TensorOptions& options) const {
  return prior_std() * noise.normal(sample_shape, options);
}

torch::Tensor Sde::prior_log_prob(const torch::Tensor& x) const {
  const auto flat = x.reshape({x.size(0), -1});
  const double dim = double(flat.size(1)), var = prior_std() * prior_std();
  return -0.5 * dim * std::log(2 * M_PI * var) - flat.pow(2).sum(1) / (2 * var);
}

VeSde::VeSde(double sigma_min, double sigma_max) : sigma_min_(sigma_min), sigma_max_(sigma_max) {
  GENFW_CHECK(sigma_min > 0 && sigma_min < sigma_max, "VE SDE: need 0 < sigma_min < sigma_max, got sigma_min = ",
              sigma_min, ", sigma_max = ", sigma_max);
}

double VeSde::sigma(double t) const { return sigma_min_ * std::pow(sigma_max_ / sigma_min_, t); }

double VeSde::diffusion(double t) const {
  // g² = dσ²/dt = 2σ² log(σ_max/σ_min) (Song et al. 2021, eq. 30).
  return sigma(t) * std::sqrt(2 * std::log(sigma_max_ / sigma_min_));
}

SdeStep VeSde::discretize(double t, double dt) const {
  const double previous = t - dt > 0 ? sigma(t - dt) : 0.0;  // below t = 0 the chain is noise-free
  return {0.0, std::sqrt(sigma(t) * sigma(t) - previous * previous)};
}

VpSde::VpSde(double beta_min, double beta_max, int64_t discrete_steps)
    : beta_min_(beta_min), beta_max_(beta_max), discrete_steps_(discrete_steps) {
  GENFW_CHECK(beta_min > 0 && beta_min <= beta_max, "VP SDE: need 0 < beta_min <= beta_max, got beta_min = ",
              beta_min, ", beta_max = ", beta_max);
}

VpSde VpSde::for_schedule(const DiffusionSchedule& schedule) {
  const int64_t steps = schedule.num_steps();
  GENFW_CHECK(steps >= 2, "VP SDE: a discrete schedule of ", steps, " step has no continuous limit");
  const auto& betas = schedule.betas;
  const double first = betas[0].item<double>(), last = betas[steps - 1].item<double>();
  const double deviation = (betas - torch::linspace(first, last, steps, betas.options())).abs().max().item<double>();
  GENFW_CHECK(deviation <= 1e-6 * last,
              "VP SDE: the model's β schedule is not linear (off by up to ", deviation,
              "), so no VP SDE with linear β(t) discretises it; choose sde = \"ve\" (its VE view) "
              "or set beta_min/beta_max explicitly");
  return VpSde(first * double(steps), last * double(steps), steps);
}

double VpSde::diffusion(double t) const { return std::sqrt(beta(t)); }

double VpSde::mean_coefficient(double t) const {
  return std::exp(-0.25 * t * t * (beta_max_ - beta_min_) - 0.5 * t * beta_min_);
}

double VpSde::marginal_std(double t) const {
  // 1 − m² = −expm1(2 log m): accurate at small t.
  return std::sqrt(-std::expm1(2 * std::log(mean_coefficient(t))));
}

SdeStep VpSde::discretize(double t, double dt) const {
  const double ratio = mean_coefficient(t) / mean_coefficient(std::max(t - dt, 0.0));  // √(1 − β_i)
  return {ratio - 1.0, std::sqrt(1.0 - ratio * ratio)};
}

double SubVpSde::diffusion(double t) const {
  // e^{−2∫₀ᵗβ} = m(t)⁴ (score_sde's subVPSDE.sde).
  const double m = mean_coefficient(t);
  return std::sqrt(beta(t) * -std::expm1(4 * std::log(m)));
}

double SubVpSde::marginal_std(double t) const { return -std::expm1(2 * std::log(mean_coefficient(t))); }

// ---- choosing an SDE for a model --------------------------------------------

Schema sde_schema() {
  return Schema()
      .choice("sde", "auto", {"auto", "ve", "vp", "subvp"},
              "the forward SDE (Song et al. 2021 §3.4): auto = vp for a noise predictor (its β schedule), "
              "ve for a score model (its noise levels)")
      .real("sigma_min", 0.0, "VE σ_min = σ(0); 0 = the model's smallest noise level", at_least(0.0))
      .real("sigma_max", 0.0, "VE σ_max = σ(1), the prior's std; 0 = the model's largest noise level",
            at_least(0.0))
      .real("beta_min", 0.0, "VP/sub-VP β(0); 0 = T·β_1 of a noise predictor's schedule, else 0.1 (score_sde)",
            at_least(0.0))
      .real("beta_max", 0.0, "VP/sub-VP β(1); 0 = T·β_T of a noise predictor's schedule, else 20 (score_sde)",
            at_least(0.0))
      .real("eps", 1e-3, "the SDE is solved from t = 1 down to t = eps (score_sde: 1e-3 VP, 1e-5 VE)",
            between(1e-8, 0.5));
}

void check_sde_options(const Options& options) {
  const double sigma_min = options.real("sigma_min"), sigma_max = options.real("sigma_max");
  GENFW_CHECK(sigma_min == 0 || sigma_max == 0 || sigma_min < sigma_max, options.owner(), ": option 'sigma_min' (",
              sigma_min, ") must be below 'sigma_max' (", sigma_max, ")");
  const double beta_min = options.real("beta_min"), beta_max = options.real("beta_max");
  GENFW_CHECK(beta_min == 0 || beta_max == 0 || beta_min <= beta_max, options.owner(), ": option 'beta_min' (",
              beta_min, ") must not exceed 'beta_max' (", beta_max, ")");
}

namespace {
std::unique_ptr<Sde> make_ve(const Options& options, const NoiseLevels& levels) {
  double sigma_min = options.real("sigma_min"), sigma_max = options.real("sigma_max");
  if (sigma_min == 0) sigma_min = levels.sigma_min;
  if (sigma_max == 0) sigma_max = levels.sigma_max;
  GENFW_CHECK(sigma_min < sigma_max, options.owner(), ": option 'sigma_min' (", sigma_min,
              ") must be below 'sigma_max' (", sigma_max, ")");
  return std::make_unique<VeSde>(sigma_min, sigma_max);
}

std::unique_ptr<Sde> make_vp(const Options& options, const DiffusionSchedule* schedule, bool sub_vp) {
  double beta_min = options.real("beta_min"), beta_max = options.real("beta_max");
  if (beta_min == 0 && beta_max == 0 && schedule != nullptr && !sub_vp) {
    try {
      return std::make_unique<VpSde>(VpSde::for_schedule(*schedule));
    } catch (const Error& e) {
      throw Error(options.owner() + ": " + e.what());
    }
  }
  const double steps = schedule ? double(schedule->num_steps()) : 0.0;
  if (beta_min == 0) beta_min = schedule ? schedule->betas[0].item<double>() * steps : 0.1;
  if (beta_max == 0) beta_max = schedule ? schedule->betas[-1].item<double>() * steps : 20.0;
  GENFW_CHECK(beta_min <= beta_max, options.owner(), ": option 'beta_min' (", beta_min,
              ") must not exceed 'beta_max' (", beta_max, ")");
  if (sub_vp) return std::make_unique<SubVpSde>(beta_min, beta_max);
  return std::make_unique<VpSde>(beta_min, beta_max);
}
}  // namespace

std::unique_ptr<Sde> make_sde(const Options& options, const Denoiser& denoiser) {
  const NoiseLevels& levels = denoiser.levels();
  std::string kind = options.string("sde");
  if (kind == "auto") kind = levels.schedule != nullptr ? "vp" : "ve";
  if (kind == "ve") return make_ve(options, levels);
  return make_vp(options, levels.schedule, kind == "subvp");
}

// ---- a denoiser under an SDE --------------------------------------------------

torch::Tensor SdeView::score(const torch::Tensor& x, double t) {
  // x/m carries noise σ̃ = s/m; the chain rule gives the 1/m.
  const double m = sde_->mean_coefficient(t);
  return denoiser_->score(x / m, sde_->ve_sigma(t)) / m;
}

torch::Tensor SdeView::probability_flow(const torch::Tensor& x, double t) {
  const double g = sde_->diffusion(t);
  return sde_->drift(x, t) - 0.5 * g * g * score(x, t);
}

torch::Tensor SdeView::denoised(const torch::Tensor& x, double t) {
  return (*denoiser_)(x / sde_->mean_coefficient(t), sde_->ve_sigma(t));
}

torch::Tensor SdeView::denoised_from_score(const torch::Tensor& x, const torch::Tensor& score, double t) const {
  const double spread = sde_->marginal_std(t);
  return (x + spread * spread * score) / sde_->mean_coefficient(t);
}

// ---- Dormand–Prince 5(4) ----------------------------------------------------

namespace {
// Butcher tableau (Dormand & Prince 1980, Table 2; scipy's RK45).
constexpr double kC[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
// 5th-order weights minus the embedded 4th-order ones (the error estimate).
constexpr double kE[7] = {71.0 / 57600,  0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525,
                          -1.0 / 40};

double rms_scaled(const torch::Tensor& err, const torch::Tensor& y0, const torch::Tensor& y1, double rtol,
                  double atol) {
  auto scale = atol + rtol * torch::maximum(y0.abs(), y1.abs());
  return (err / scale).pow(2).mean().sqrt().item<double>();
}
}  // namespace

OdeSolution solve_dopri5(const std::function<torch::Tensor(const torch::Tensor&, double)>& rhs, torch::Tensor y0,
                         double t0, double t1, double rtol, double atol,
                         const std::function<void(double, const torch::Tensor&)>& on_step) {
  GENFW_CHECK(rtol > 0 && atol > 0, "ODE solver: rtol and atol must be > 0, got ", rtol, " and ", atol);
  OdeSolution out;
  auto f = [&](const torch::Tensor& y, double t) {
    ++out.evaluations;
    return rhs(y, t);
  };
  const double direction = t1 >= t0 ? 1.0 : -1.0, span = std::abs(t1 - t0);
  torch::Tensor y = std::move(y0), k_first = f(y, t0);
  // Initial step (Hairer et al. I, §II.4, as scipy's select_initial_step).
  double h;
  {
    const double d0 = rms_scaled(y, y, y, rtol, atol), d1 = rms_scaled(k_first, y, y, rtol, atol);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, span);
    auto k1 = f(y + direction * h0 * k_first, t0 + direction * h0);
    const double d2 = rms_scaled(k1 - k_first, y, y, rtol, atol) / h0;
    const double h1 = std::max(d1, d2) <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / std::max(d1, d2), 0.2);
    h = std::min(100 * h0, h1);
  }
  double t = t0;
  while (direction * (t1 - t) > 1e-12 * std::max(1.0, span)) {
    h = std::min(h, std::abs(t1 - t));
    const double step = direction * h;
    // 1. The seven stages (the last, at t + step, is the next step's first: FSAL).
    torch::Tensor k[7];
    k[0] = k_first;
    for (int s = 1; s < 7; ++s) {
      torch::Tensor increment = kA[s][0] * k[0];
      for (int j = 1; j < s; ++j) {
        if (kA[s][j] != 0) increment = increment + kA[s][j] * k[j];
      }
      const auto y_stage = y + step * increment;
      k[s] = f(y_stage, t + kC[s] * step);
      if (s == 6) {
        // 2. The 5th-order solution is the last stage's argument; the error is its
        //    difference from the embedded 4th-order one.
        torch::Tensor err = kE[0] * k[0];
        for (int j = 2; j < 7; ++j) err = err + kE[j] * k[j];
        const double norm = rms_scaled(step * err, y, y_stage, rtol, atol);
        // 3. Accept or reject; next h from the error (safety 0.9, factor in [0.2, 10]).
        const double factor = norm == 0 ? 10.0 : std::clamp(0.9 * std::pow(norm, -0.2), 0.2, 10.0);
        if (norm <= 1) {
          t = std::abs(t1 - (t + step)) <= 1e-12 * std::max(1.0, span) ? t1 : t + step;
          y = y_stage;
          k_first = k[6];
          ++out.accepted;
          if (on_step) on_step(t, y);
          h *= factor;
        } else {
          ++out.rejected;
          h *= std::min(factor, 1.0);
        }
      }
    }
    GENFW_CHECK(h > 1e-12 * std::max(1.0, span), "ODE solver: the step size underflowed at t = ", t,
                " (rtol ", rtol, ", atol ", atol, "); the right-hand side may be discontinuous or NaN");
  }
  out.y = y;
  return out;
}

// ---- divergence and the ODE likelihood ---------------------------------------

FieldDivergence divergence(const std::function<torch::Tensor(const torch::Tensor&)>& field, const torch::Tensor& x,
                           const std::vector<torch::Tensor>& probes) {
  torch::AutoGradMode enable_grad(true);
  const int64_t n = x.size(0);
  auto input = x.detach().requires_grad_(true);
  auto value = field(input);
  auto flat = value.reshape({n, -1});
  auto total = torch::zeros({n}, x.options());
  auto vjp = [&](const torch::Tensor& output) {
    return torch::autograd::grad({output}, {input}, {}, /*retain_graph=*/true)[0].reshape({n, -1});
  };
  if (probes.empty()) {
    // tr(∂F/∂x) = Σ_i ∂F_i/∂x_i: one backward pass per dimension (samples are independent).
    for (int64_t i = 0; i < flat.size(1); ++i) total = total + vjp(flat.select(1, i).sum()).select(1, i);
  } else {
    // Hutchinson: E_v[vᵀ(∂F/∂x)v] = tr(∂F/∂x) for E[vvᵀ] = I.
    for (const auto& v : probes) total = total + (vjp((value * v).sum()) * v.reshape({n, -1})).sum(1);
    total = total / double(probes.size());
  }
  return {value.detach(), total.detach()};
}

OdeLikelihood ode_log_likelihood(SdeView& view, const torch::Tensor& x, double eps, double rtol, double atol,
                                 const std::vector<torch::Tensor>& probes) {
  const int64_t n = x.size(0);
  const auto shape = x.sizes().vec();
  const auto flat = x.reshape({n, -1});
  const int64_t dim = flat.size(1);
  // The state [x, Δ]: Δ accumulates ∫ ∇·(dx/dt) dt (Chen et al. 2018, eq. 4).
  auto rhs = [&](const torch::Tensor& state, double t) {
    auto position = state.slice(1, 0, dim).reshape(shape);
    auto flow = divergence([&](const torch::Tensor& y) { return view.probability_flow(y, t); }, position, probes);
    return torch::cat({flow.value.reshape({n, -1}), flow.divergence.reshape({n, 1}).to(state.dtype())}, 1);
  };
  OdeLikelihood out;
  out.solution = solve_dopri5(rhs, torch::cat({flat, torch::zeros({n, 1}, flat.options())}, 1), eps, 1.0, rtol, atol);
  out.prior_point = out.solution.y.slice(1, 0, dim).reshape(shape);
  const auto delta = out.solution.y.select(1, dim).to(torch::kFloat64);
  // log p_eps(x) = log p_1(x(1)) + ∫_eps^1 ∇·f̃ dt (Song et al. 2021, eq. 40).
  out.log_prob = view.sde().prior_log_prob(out.prior_point.to(torch::kFloat64)) + delta;
  return out;
}

}  // namespace genfw
