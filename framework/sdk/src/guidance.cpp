#include "genfw/guidance.hpp"

#include <algorithm>

#include "genfw/error.hpp"

namespace genfw {

Schema denoiser_schema() {
  return Schema()
      .real("guidance_scale", 0.0,
            "guidance strength s (0 = off). Classifier-free guidance when the model is class-conditional: "
            "D(x,∅) + s(D(x,y) − D(x,∅)); classifier guidance with the same s when the experiment names a "
            "classifier ([guidance]): D + s σ² ∇x log p(y|x)",
            at_least(0.0))
      .choice("discrete_time", "nearest", {"nearest", "interpolated"},
              "how a noise predictor is asked about a σ between its levels: the nearest timestep, or a "
              "fractional one interpolated in log σ (k-diffusion's sigma_to_t)");
}

torch::Tensor sampling_labels(const SampleContext& context, int64_t n, int64_t num_classes) {
  if (context.labels.defined()) {
    GENFW_CHECK(context.labels.numel() == n, "sampler: got ", context.labels.numel(), " labels for ", n,
                " samples");
    return context.labels.to(context.device, torch::kLong).reshape({n});
  }
  return torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(context.device)).remainder(num_classes);
}

// ---- classifier-free guidance --------------------------------------------------

ClassifierFreeGuidance::ClassifierFreeGuidance(std::shared_ptr<ModelDenoiser> conditional, torch::Tensor labels,
                                               double scale)
    : Denoiser(conditional->levels()), conditional_(std::move(conditional)), labels_(std::move(labels)),
      scale_(scale) {
  GENFW_CHECK(conditional_->num_classes() > 0, "classifier-free guidance: the model is not class-conditional");
}

torch::Tensor ClassifierFreeGuidance::denoise(const torch::Tensor& x, const torch::Tensor& sigma) {
  const int64_t n = x.size(0);
  const auto null = torch::full_like(labels_, conditional_->num_classes());
  const auto both = conditional_->denoise_given(torch::cat({x, x}), torch::cat({sigma, sigma}),
                                                torch::cat({labels_, null}));
  const auto conditioned = both.slice(0, 0, n), unconditioned = both.slice(0, n);
  return unconditioned + scale_ * (conditioned - unconditioned);
}

// ---- classifier guidance ------------------------------------------------------

namespace {
NoisyClassifier& classifier_of(Model& model) {
  auto* classifier = as<NoisyClassifier>(model);
  GENFW_CHECK(classifier != nullptr, "classifier guidance: the [guidance] model offers no 'classifier'");
  return *classifier;
}
}  // namespace

ClassifierGuidance::ClassifierGuidance(std::shared_ptr<Denoiser> inner, Model& classifier, torch::Tensor labels,
                                       double scale, DiscreteTime rounding)
    : Denoiser(inner->levels()),
      inner_(std::move(inner)),
      classifier_(&classifier_of(classifier)),
      time_(classifier_->schedule(), rounding),
      labels_(std::move(labels)),
      scale_(scale) {}

torch::Tensor ClassifierGuidance::denoise(const torch::Tensor& x, const torch::Tensor& sigma) {
  const auto denoised = inner_->denoise(x, sigma);
  torch::Tensor grad;
  {
    // Inference mode cannot be left by enabling grad, so the gradient is taken
    // outside it on fresh leaves.
    c10::InferenceMode off(false);
    torch::AutoGradMode enable(true);
    auto leaf = x.detach().clone().requires_grad_(true);
    const auto s = sigma.detach().clone();
    const auto x_t = leaf * per_sample((1 + s.to(x.dtype()).pow(2)).rsqrt(), leaf);
    auto log_probs = torch::log_softmax(classifier_->classify(x_t, time_.timesteps(s).clone()), 1);
    auto selected = log_probs.gather(1, labels_.to(log_probs.device()).reshape({-1, 1})).sum();
    grad = torch::autograd::grad({selected}, {leaf})[0].detach();
  }
  const auto s = per_sample(sigma, x);
  return denoised + scale_ * s * s * grad;
}

// ---- the sampler's denoiser ---------------------------------------------------

std::shared_ptr<Denoiser> sampling_denoiser(SampleContext& context, const Options& options) {
  GENFW_CHECK(context.model != nullptr, "sampler: no model");
  const double scale = options.real("guidance_scale");
  const DiscreteTime rounding = parse_discrete_time(options.string("discrete_time"));
  auto model = std::make_shared<ModelDenoiser>(*context.model, rounding);
  const int64_t n = context.num_samples;
  if (auto* super_resolution = as<LowResolutionConditioned>(*context.model)) {
    GENFW_CHECK(context.low_resolution.defined() && context.low_resolution.size(0) == n,
                "sampler: the model is a super-resolution stage and needs one low-resolution image per sample "
                "(SampleContext::low_resolution; the runner takes them from [cascade] or [sampler] condition)");
    super_resolution->condition_on(context.low_resolution);
  }
  std::shared_ptr<Denoiser> denoiser = model;
  if (model->num_classes() > 0) {
    auto labels = sampling_labels(context, n, model->num_classes());
    // Guidance off: a conditional model is conditioned on the labels (s = 1).
    model->condition_on(labels);
    if (scale > 0) denoiser = std::make_shared<ClassifierFreeGuidance>(model, labels, scale);
  }
  if (context.classifier != nullptr && scale > 0) {
    const int64_t classes = std::max<int64_t>(classifier_of(*context.classifier).num_classes(), 1);
    denoiser = std::make_shared<ClassifierGuidance>(denoiser, *context.classifier,
                                                    sampling_labels(context, n, classes), scale, rounding);
  }
  denoiser->set_evaluation_hook([&context](int64_t evaluations) { context.count_evaluations(evaluations); });
  return denoiser;
}

}  // namespace genfw
