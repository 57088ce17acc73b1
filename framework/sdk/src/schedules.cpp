#include "genfw/schedules.hpp"

#include <cmath>

#include "genfw/error.hpp"
#include "genfw/model.hpp"

namespace genfw {

torch::Tensor geometric_sigmas(double sigma_begin, double sigma_end, int64_t levels) {
  GENFW_CHECK(sigma_begin > 0 && sigma_end > 0, "noise levels must be positive, got sigma_begin=",
              sigma_begin, " sigma_end=", sigma_end);
  GENFW_CHECK(levels >= 1, "number of noise levels must be >= 1, got ", levels);
  if (levels == 1) return torch::full({1}, sigma_begin, torch::kFloat64);
  return torch::exp(torch::linspace(std::log(sigma_begin), std::log(sigma_end), levels, torch::kFloat64));
}

const std::vector<std::string>& beta_schedule_kinds() {
  static const std::vector<std::string> kinds{"linear", "scaled_linear", "squaredcos_cap_v2"};
  return kinds;
}

torch::Tensor beta_schedule(const std::string& kind, int64_t num_steps, double beta_start,
                            double beta_end) {
  GENFW_CHECK(num_steps >= 1, "diffusion needs at least 1 step, got ", num_steps);
  if (kind == "linear") return torch::linspace(beta_start, beta_end, num_steps, torch::kFloat64);
  if (kind == "scaled_linear") {
    return torch::linspace(std::sqrt(beta_start), std::sqrt(beta_end), num_steps, torch::kFloat64).pow(2);
  }
  if (kind == "squaredcos_cap_v2") {
    // Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008.
    auto alpha_bar = [](double t) { return std::pow(std::cos((t + 0.008) / 1.008 * M_PI / 2), 2); };
    std::vector<double> betas(num_steps);
    for (int64_t i = 0; i < num_steps; ++i) {
      double t1 = double(i) / num_steps, t2 = double(i + 1) / num_steps;
      betas[i] = std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999);
    }
    return torch::tensor(betas, torch::kFloat64);
  }
  throw Error("unknown beta schedule '" + kind +
              "'; expected one of: linear, scaled_linear, squaredcos_cap_v2");
}

DiffusionSchedule DiffusionSchedule::from_betas(const torch::Tensor& betas_in) {
  DiffusionSchedule s;
  s.betas = betas_in.to(torch::kFloat64).cpu();
  GENFW_CHECK(s.betas.dim() == 1 && s.betas.size(0) >= 1, "betas must be a non-empty 1-D list");
  GENFW_CHECK((s.betas > 0).all().item<bool>() && (s.betas < 1).all().item<bool>(),
              "every beta must lie in (0, 1)");
  s.alphas = 1 - s.betas;
  s.alphas_cumprod = torch::cumprod(s.alphas, 0);
  s.alphas_cumprod_prev = torch::cat({torch::ones({1}, torch::kFloat64), s.alphas_cumprod.slice(0, 0, -1)});
  s.posterior_variance = s.betas * (1 - s.alphas_cumprod_prev) / (1 - s.alphas_cumprod);
  // β̃_0 = 0; clip the log as Ho et al.'s code does (use β̃_1 at t = 0).
  s.posterior_log_variance_clipped = torch::log(torch::cat(
      {s.posterior_variance.slice(0, 1, 2), s.posterior_variance.slice(0, 1)}));
  if (s.betas.size(0) == 1) s.posterior_log_variance_clipped = torch::log(s.betas);
  s.posterior_mean_coef1 = s.betas * torch::sqrt(s.alphas_cumprod_prev) / (1 - s.alphas_cumprod);
  s.posterior_mean_coef2 = (1 - s.alphas_cumprod_prev) * torch::sqrt(s.alphas) / (1 - s.alphas_cumprod);
  return s;
}

torch::Tensor DiffusionSchedule::ve_sigmas() const {
  return torch::sqrt((1 - alphas_cumprod) / alphas_cumprod);
}

PredictionType parse_prediction_type(const std::string& name) {
  if (name == "epsilon") return PredictionType::epsilon;
  if (name == "sample") return PredictionType::sample;
  if (name == "v_prediction") return PredictionType::v_prediction;
  throw Error("unknown prediction type '" + name + "'; expected epsilon, sample or v_prediction");
}

const char* prediction_type_name(PredictionType type) {
  switch (type) {
    case PredictionType::epsilon: return "epsilon";
    case PredictionType::sample: return "sample";
    case PredictionType::v_prediction: return "v_prediction";
  }
  return "?";
}

torch::Tensor per_sample(const torch::Tensor& coefficient, const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return coefficient.to(like.options()).reshape(shape);
}

torch::Tensor x0_from_eps(const torch::Tensor& x_t, const torch::Tensor& eps,
                          const torch::Tensor& alpha_bar) {
  auto a = per_sample(alpha_bar, x_t);
  return (x_t - torch::sqrt(1 - a) * eps) / torch::sqrt(a);
}

torch::Tensor eps_from_x0(const torch::Tensor& x_t, const torch::Tensor& x0,
                          const torch::Tensor& alpha_bar) {
  auto a = per_sample(alpha_bar, x_t);
  return (x_t - torch::sqrt(a) * x0) / torch::sqrt(1 - a);
}

torch::Tensor eps_from_v(const torch::Tensor& x_t, const torch::Tensor& v,
                         const torch::Tensor& alpha_bar) {
  auto a = per_sample(alpha_bar, x_t);
  return torch::sqrt(a) * v + torch::sqrt(1 - a) * x_t;
}

torch::Tensor v_from_eps(const torch::Tensor& x0, const torch::Tensor& eps,
                         const torch::Tensor& alpha_bar) {
  auto a = per_sample(alpha_bar, x0);
  return torch::sqrt(a) * eps - torch::sqrt(1 - a) * x0;
}

torch::Tensor eps_from_prediction(PredictionType type, const torch::Tensor& output,
                                  const torch::Tensor& x_t, const torch::Tensor& alpha_bar) {
  switch (type) {
    case PredictionType::epsilon: return output;
    case PredictionType::sample: return eps_from_x0(x_t, output, alpha_bar);
    case PredictionType::v_prediction: return eps_from_v(x_t, output, alpha_bar);
  }
  return output;
}

torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& alpha_bar) {
  return -eps / torch::sqrt(1 - per_sample(alpha_bar, eps));
}

torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& alpha_bar) {
  return -score * torch::sqrt(1 - per_sample(alpha_bar, score));
}

// ---- derivable capabilities ------------------------------------------------

bool can_derive(const std::vector<Capability>& offered, Capability capability) {
  auto has = [&](Capability c) {
    return std::find(offered.begin(), offered.end(), c) != offered.end();
  };
  if (has(capability)) return true;
  return capability == Capability::score && has(Capability::noise_prediction);
}

}  // namespace genfw
