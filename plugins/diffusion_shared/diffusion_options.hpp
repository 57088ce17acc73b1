#pragma once
/// Plugin-side code shared by the diffusion family (DDPM, Ho et al. 2020; DDIM,
/// Song et al. 2021). Header-only, included relatively by the diffusion plugins;
/// this folder has no CMakeLists.txt and is not globbed as a plugin.
/// Candidate to move into the framework (schedules.hpp / model.hpp / sampler.hpp).
///
///  1. diffusion_schema() / DiffusionSettings: the β-schedule and prediction-type
///     options every noise-prediction model (and the noisy classifier) carries, so a
///     trained model is self-describing.
///  2. ScheduleCarrier: lets the noisy-classifier objective read the schedule of a
///     classifier model (NoisyClassifier has no schedule() in the SDK).
///  3. Guidance: classifier-free guidance (Ho & Salimans 2022) and classifier
///     guidance (Dhariwal & Nichol 2021, Alg. 1/2 in ε form), used by both samplers.
#include <genfw/sdk.hpp>

#include <string>

namespace genfw_diffusion {

/// The schedule options (one declaration for every model of the family).
inline genfw::Schema diffusion_schema() {
  return genfw::Schema()
      .integer("num_train_timesteps", 1000, "number T of diffusion steps, t = 0..T-1",
               genfw::at_least(1))
      .choice("beta_schedule", "linear", genfw::beta_schedule_kinds(),
              "β_t schedule: linear (Ho et al. 2020), scaled_linear, squaredcos_cap_v2 (cosine)")
      .real("beta_start", 1e-4, "first β (linear, scaled_linear)", genfw::between(1e-12, 0.999))
      .real("beta_end", 0.02, "last β (linear, scaled_linear)", genfw::between(1e-12, 0.999))
      .choice("prediction_type", "epsilon", {"epsilon", "sample", "v_prediction"},
              "what the network outputs: ε, x0, or v = √ᾱ ε − √(1−ᾱ) x0");
}

/// Resolved schedule options.
struct DiffusionSettings {
  genfw::DiffusionSchedule schedule;
  genfw::PredictionType prediction_type = genfw::PredictionType::epsilon;

  static DiffusionSettings from_options(const genfw::Options& options) {
    const std::string kind = options.string("beta_schedule");
    const double start = options.real("beta_start"), end = options.real("beta_end");
    GENFW_CHECK(kind == "squaredcos_cap_v2" || start <= end, options.owner(),
                ": option 'beta_start' (", start, ") must be <= 'beta_end' (", end, ")");
    DiffusionSettings s;
    s.schedule = genfw::DiffusionSchedule::from_betas(
        genfw::beta_schedule(kind, options.integer("num_train_timesteps"), start, end));
    s.prediction_type = genfw::parse_prediction_type(options.string("prediction_type"));
    return s;
  }
};

/// ᾱ at integer timesteps t [N] (any device) as float tensor on t's device, dtype of `like`.
/// The schedule goes to t's device, never t to the host: no device→host sync per step.
inline torch::Tensor alpha_bar_at(const genfw::DiffusionSchedule& schedule, const torch::Tensor& t,
                                  const torch::Tensor& like) {
  return schedule.alphas_cumprod.to(t.device()).index_select(0, t.to(torch::kLong))
      .to(like.device(), like.scalar_type());
}

/// A schedule tensor as host numbers, read once before a sampling loop so that the
/// loop does no per-step tensor indexing or .item().
inline std::vector<double> host_values(const torch::Tensor& values) {
  auto c = values.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// Models that carry a diffusion schedule but are not NoisePredictors (the noisy
/// classifier). Default visibility so dynamic_cast works across plugin libraries.
class BOOST_SYMBOL_VISIBLE ScheduleCarrier {
 public:
  virtual ~ScheduleCarrier() = default;
  virtual const genfw::DiffusionSchedule& diffusion_schedule() const = 0;
  virtual int64_t classes() const = 0;
};

/// Samplers that accept a classifier for classifier guidance. Until the runner
/// can wire a classifier from another run, tests attach one with
/// dynamic_cast<ClassifierGuided*>(sampler)->set_classifier(model).
class BOOST_SYMBOL_VISIBLE ClassifierGuided {
 public:
  virtual ~ClassifierGuided() = default;
  /// `classifier` must offer Capability::classifier and be trained under the same
  /// β schedule as the sampled model; nullptr detaches it. Not owned.
  virtual void set_classifier(genfw::Model* classifier) = 0;
};

/// Class labels for `n` samples: context.labels when given, else 0, 1, ..., C−1, 0, ...
inline torch::Tensor sampling_labels(const genfw::SampleContext& context, int64_t n,
                                     int64_t num_classes) {
  if (context.labels.defined()) {
    GENFW_CHECK(context.labels.numel() == n, "diffusion sampler: got ", context.labels.numel(),
                " labels for ", n, " samples");
    return context.labels.to(context.device, torch::kLong).reshape({n});
  }
  return torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(context.device))
      .remainder(num_classes);
}

/// Classifier guidance in ε form (Dhariwal & Nichol 2021, eq. 14):
/// ε' = ε − √(1−ᾱ_t) · s · ∇x log p(y | x_t, t). Differentiates through the
/// classifier whatever the caller's grad mode.
inline torch::Tensor classifier_guided_eps(const torch::Tensor& eps, const torch::Tensor& x_t,
                                           const torch::Tensor& t, genfw::Model& classifier,
                                           const torch::Tensor& y, double scale,
                                           const torch::Tensor& alpha_bar) {
  auto* net = genfw::as<genfw::NoisyClassifier>(classifier);
  GENFW_CHECK(net != nullptr, "classifier guidance: the classifier model offers no 'classifier'");
  torch::Tensor grad;
  {
    torch::AutoGradMode enable(true);
    auto x = x_t.detach().requires_grad_(true);
    auto log_probs = torch::log_softmax(net->classify(x, t), 1);
    auto selected = log_probs.gather(1, y.to(log_probs.device()).reshape({-1, 1})).sum();
    grad = torch::autograd::grad({selected}, {x})[0].detach();
  }
  return eps - genfw::per_sample(torch::sqrt(1 - alpha_bar), eps) * scale * grad;
}

/// The network view the samplers use: ε̃(x_t, t) after prediction-type conversion,
/// classifier-free guidance and classifier guidance. Also returns the raw x0 read.
class GuidedEps {
 public:
  GuidedEps(genfw::SampleContext& context, double guidance_scale, genfw::Model* classifier)
      : context_(context), scale_(guidance_scale), classifier_(classifier) {
    net_ = genfw::as<genfw::NoisePredictor>(*context.model);
    GENFW_CHECK(net_ != nullptr, "diffusion sampler: the model offers no 'noise-prediction'");
    alphas_cumprod_ = host_values(net_->schedule().alphas_cumprod);
    const int64_t n = context.num_samples;
    if (net_->num_classes() > 0) {
      labels_ = sampling_labels(context, n, net_->num_classes());
    } else if (classifier_ != nullptr && scale_ > 0) {
      int64_t classes = context.data.num_classes;
      if (auto* carrier = dynamic_cast<ScheduleCarrier*>(classifier_)) classes = carrier->classes();
      GENFW_CHECK(context.labels.defined() || classes > 0,
                  "classifier guidance needs labels or a classifier with a known class count");
      labels_ = sampling_labels(context, n, std::max<int64_t>(classes, 1));
    }
  }

  const genfw::DiffusionSchedule& schedule() const { return net_->schedule(); }
  genfw::PredictionType prediction_type() const { return net_->prediction_type(); }

  /// ε̃ at x_t for one timestep t (all samples share it).
  torch::Tensor operator()(const torch::Tensor& x_t, int64_t t) {
    const int64_t n = x_t.size(0);
    auto ts = torch::full({n}, t, torch::TensorOptions().dtype(torch::kLong).device(x_t.device()));
    auto alpha_bar = torch::full({n}, alphas_cumprod_[size_t(t)], x_t.options());
    torch::Tensor eps;
    if (net_->num_classes() > 0 && scale_ > 0) {
      // Classifier-free guidance: one batched call on [x; x] with labels [y; ∅],
      // counted as 2 evaluations (it costs two) — ε̃ = ε(x,∅) + s (ε(x,y) − ε(x,∅)).
      auto null = torch::full_like(labels_, net_->num_classes());
      auto out = net_->predict(torch::cat({x_t, x_t}), torch::cat({ts, ts}),
                               torch::cat({labels_, null}));
      context_.nfe += 2;
      auto both = genfw::eps_from_prediction(prediction_type(), out, torch::cat({x_t, x_t}),
                                             torch::cat({alpha_bar, alpha_bar}));
      auto cond = both.slice(0, 0, n), uncond = both.slice(0, n);
      eps = uncond + scale_ * (cond - uncond);
    } else {
      // Guidance off: a conditional model is conditioned on the labels (s = 1).
      auto out = net_->predict(x_t, ts, net_->num_classes() > 0 ? labels_ : torch::Tensor());
      context_.nfe += 1;
      eps = genfw::eps_from_prediction(prediction_type(), out, x_t, alpha_bar);
    }
    if (classifier_ != nullptr && scale_ > 0) {
      eps = classifier_guided_eps(eps, x_t, ts, *classifier_, labels_, scale_, alpha_bar);
      context_.nfe += 1;
    }
    return eps;
  }

 private:
  genfw::SampleContext& context_;
  double scale_;
  genfw::Model* classifier_;
  genfw::NoisePredictor* net_ = nullptr;
  torch::Tensor labels_;
  std::vector<double> alphas_cumprod_;  // the schedule's ᾱ_t on the host
};

/// The guidance options of both samplers.
inline genfw::Schema guidance_schema() {
  return genfw::Schema().real(
      "guidance_scale", 0.0,
      "guidance strength s (0 = off). Classifier-free guidance when the model is "
      "class-conditional: ε(x,∅) + s(ε(x,y) − ε(x,∅)); classifier guidance with the same s "
      "when a classifier is attached: ε − √(1−ᾱ_t) s ∇x log p(y|x_t)",
      genfw::at_least(0.0));
}

}  // namespace genfw_diffusion
