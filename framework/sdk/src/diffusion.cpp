#include "genfw/diffusion.hpp"

#include "genfw/error.hpp"

namespace genfw {

Schema diffusion_schema() {
  return Schema()
      .integer("num_train_timesteps", 1000, "number T of diffusion steps, t = 0..T-1", at_least(1))
      .choice("beta_schedule", "linear", beta_schedule_kinds(),
              "β_t schedule: linear (Ho et al. 2020), scaled_linear, squaredcos_cap_v2 (cosine)")
      .real("beta_start", 1e-4, "first β (linear, scaled_linear)", between(1e-12, 0.999))
      .real("beta_end", 0.02, "last β (linear, scaled_linear)", between(1e-12, 0.999))
      .choice("prediction_type", "epsilon", {"epsilon", "sample", "v_prediction"},
              "what the network outputs: ε, x0, or v = √ᾱ ε − √(1−ᾱ) x0");
}

DiffusionSettings DiffusionSettings::from_options(const Options& options) {
  const std::string kind = options.string("beta_schedule");
  const double start = options.real("beta_start"), end = options.real("beta_end");
  GENFW_CHECK(kind == "squaredcos_cap_v2" || start <= end, options.owner(), ": option 'beta_start' (", start,
              ") must be <= 'beta_end' (", end, ")");
  DiffusionSettings s;
  s.schedule = DiffusionSchedule::from_betas(beta_schedule(kind, options.integer("num_train_timesteps"), start, end));
  s.prediction_type = parse_prediction_type(options.string("prediction_type"));
  return s;
}

torch::Tensor alpha_bar_at(const DiffusionSchedule& schedule, const torch::Tensor& t, const torch::Tensor& like) {
  if (!t.is_floating_point() || schedule.num_steps() == 1) {
    return schedule.alphas_cumprod.to(t.device())
        .index_select(0, t.to(torch::kLong))
        .to(like.device(), like.scalar_type());
  }
  // Fractional t: log σ linear between the two timesteps around it (ScheduleTime's inverse).
  const auto log_sigmas = schedule.ve_sigmas().log().to(t.device());
  const auto time = t.to(torch::kFloat64).clamp(0, double(schedule.num_steps() - 1));
  const auto low = time.floor().clamp(0, double(schedule.num_steps() - 2)).to(torch::kLong);
  const auto fraction = time - low.to(torch::kFloat64);
  const auto log_sigma = (1 - fraction) * log_sigmas.index_select(0, low) + fraction * log_sigmas.index_select(0, low + 1);
  return (1 + (2 * log_sigma).exp()).reciprocal().to(like.device(), like.scalar_type());
}

std::vector<double> host_values(const torch::Tensor& values) {
  auto c = values.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace genfw
