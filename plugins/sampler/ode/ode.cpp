// ode: the probability-flow ODE (Song et al. 2021, "Score-Based Generative Modeling
// through SDEs", eq. 13 and §4.3) from t = 1 to t = eps, solved by the adaptive
// Dormand–Prince 5(4) pair with error-controlled steps (genfw::solve_dopri5; score_sde's
// ode_sampler calls scipy's RK45 with the same rtol/atol). Deterministic given x(1);
// the number of score evaluations follows from the tolerances and is counted in
// context.nfe (6 per accepted or rejected step, plus 2 for the initial step size).
//
//   dx/dt = f(x, t) − ½ g(t)² ∇x log p_t(x),   x(1) ~ prior
#include <genfw/sdk.hpp>

namespace genfw_sde {
namespace {

class ProbabilityFlowOde : public genfw::Sampler {
 public:
  struct Settings {
    double rtol = 1e-5;
    double atol = 1e-5;
    bool denoise = false;
    int64_t record_every = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .real("rtol", &Settings::rtol,
                  "relative tolerance of the Dormand–Prince error control (score_sde: 1e-5)",
                  genfw::between(1e-12, 1.0))
            .real("atol", &Settings::atol, "absolute tolerance (score_sde: 1e-5)", genfw::between(1e-12, 1.0))
            .boolean("denoise", &Settings::denoise,
                     "finish with one Tweedie step x ← (x + s(eps)²·∇log p)/m(eps) (one more evaluation; score_sde's "
                     "ode_sampler denoise)")
            .integer("record_every", &Settings::record_every,
                     "report every k-th accepted solver step through the step callback (0 = off)",
                     genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() {
    return genfw::Schema(bound_options().schema()).merge(genfw::sde_schema()).merge(genfw::denoiser_schema());
  }

  ProbabilityFlowOde(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), settings_(bound_options().read(options)), eps_(options.real("eps")) {
    genfw::check_sde_options(options);
  }

  torch::Tensor sample(genfw::SampleContext& context) override {
    c10::InferenceMode inference;  // the score is only evaluated
    auto denoiser = genfw::sampling_denoiser(context, options_);
    std::unique_ptr<genfw::Sde> sde = genfw::make_sde(options_, *denoiser);
    genfw::SdeView view(*denoiser, *sde);
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    // 1. x(1) from the prior, unless the caller gives a start.
    torch::Tensor x = context.x_init.defined() ? context.x_init.to(options).clone()
                                               : sde->prior_sample(context.noise, context.data.shape, options);
    // 2. Integrate eq. 13 from t = 1 down to eps; report each accepted step.
    int64_t accepted = 0;
    // The step count is not known in advance (total = 0).
    auto report = [&](double t, const torch::Tensor& y) {
      if (settings_.record_every > 0 && accepted % settings_.record_every == 0) context.report({accepted, 0, t, y, {}});
      ++accepted;
    };
    auto rhs = [&](const torch::Tensor& y, double t) { return view.probability_flow(y, t); };
    genfw::OdeSolution solution = genfw::solve_dopri5(rhs, x, 1.0, eps_, settings_.rtol, settings_.atol, report);
    x = solution.y;
    return settings_.denoise ? view.denoised(x, eps_) : x;  // 3. Tweedie's E[x(0) | x(eps)]
  }

 private:
  genfw::Options options_;  // the denoiser and the SDE read their own keys from them
  Settings settings_;
  double eps_;  // sde_schema's end time
};

}  // namespace
}  // namespace genfw_sde

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_sde::ProbabilityFlowOde>("ode", genfw::Kind::sampler,
                                          "probability-flow ODE (Song et al. 2021 eq. 13), adaptive Dormand–Prince "
                                          "5(4) with rtol/atol error control")
      .require(genfw::Capability::score);
}
