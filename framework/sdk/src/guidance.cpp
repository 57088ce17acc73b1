#include "genfw/guidance.hpp"

#include <algorithm>

#include "genfw/diffusion.hpp"
#include "genfw/error.hpp"

namespace genfw {

Schema guidance_schema() {
  return Schema().real(
      "guidance_scale", 0.0,
      "guidance strength s (0 = off). Classifier-free guidance when the model is class-conditional: "
      "ε(x,∅) + s(ε(x,y) − ε(x,∅)); classifier guidance with the same s when the experiment names a "
      "classifier ([guidance]): ε − √(1−ᾱ_t) s ∇x log p(y|x_t)",
      at_least(0.0));
}

torch::Tensor sampling_labels(const SampleContext& context, int64_t n, int64_t num_classes) {
  if (context.labels.defined()) {
    GENFW_CHECK(context.labels.numel() == n, "sampler: got ", context.labels.numel(), " labels for ", n,
                " samples");
    return context.labels.to(context.device, torch::kLong).reshape({n});
  }
  return torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(context.device)).remainder(num_classes);
}

torch::Tensor classifier_guided_eps(const torch::Tensor& eps, const torch::Tensor& x_t, const torch::Tensor& t,
                                   Model& classifier, const torch::Tensor& y, double scale,
                                   const torch::Tensor& alpha_bar) {
  auto* net = as<NoisyClassifier>(classifier);
  GENFW_CHECK(net != nullptr, "classifier guidance: the classifier model offers no 'classifier'");
  torch::Tensor grad;
  {
    // Inference mode cannot be left by enabling grad, so the gradient is taken
    // outside it on a fresh leaf.
    c10::InferenceMode off(false);
    torch::AutoGradMode enable(true);
    auto x = x_t.detach().clone().requires_grad_(true);
    auto log_probs = torch::log_softmax(net->classify(x, t), 1);
    auto selected = log_probs.gather(1, y.to(log_probs.device()).reshape({-1, 1})).sum();
    grad = torch::autograd::grad({selected}, {x})[0].detach();
  }
  return eps - per_sample(torch::sqrt(1 - alpha_bar), eps) * scale * grad;
}

GuidedEps::GuidedEps(SampleContext& context, double guidance_scale)
    : context_(context), scale_(guidance_scale), classifier_(context.classifier) {
  net_ = as<NoisePredictor>(*context.model);
  GENFW_CHECK(net_ != nullptr, "diffusion sampler: the model offers no 'noise-prediction'");
  alphas_cumprod_ = host_values(net_->schedule().alphas_cumprod);
  const int64_t n = context.num_samples;
  if (net_->num_classes() > 0) {
    labels_ = sampling_labels(context, n, net_->num_classes());
  } else if (classifier_ != nullptr && scale_ > 0) {
    auto* classifier = as<NoisyClassifier>(*classifier_);
    GENFW_CHECK(classifier != nullptr, "classifier guidance: the [guidance] model offers no 'classifier'");
    const DiffusionSchedule& own = net_->schedule();
    const DiffusionSchedule& theirs = classifier->schedule();
    GENFW_CHECK(own.num_steps() == theirs.num_steps() &&
                    torch::allclose(own.alphas_cumprod, theirs.alphas_cumprod, 1e-6, 1e-9),
                "classifier guidance: the classifier was trained under another β schedule (",
                theirs.num_steps(), " steps) than the sampled model (", own.num_steps(),
                " steps); train it with the model's num_train_timesteps, beta_schedule, beta_start, beta_end");
    labels_ = sampling_labels(context, n, std::max<int64_t>(classifier->num_classes(), 1));
  }
}

const DiffusionSchedule& GuidedEps::schedule() const { return net_->schedule(); }
PredictionType GuidedEps::prediction_type() const { return net_->prediction_type(); }

torch::Tensor GuidedEps::operator()(const torch::Tensor& x_t, int64_t t) {
  const int64_t n = x_t.size(0);
  auto ts = torch::full({n}, t, torch::TensorOptions().dtype(torch::kLong).device(x_t.device()));
  auto alpha_bar = torch::full({n}, alphas_cumprod_[size_t(t)], x_t.options());
  torch::Tensor eps;
  if (net_->num_classes() > 0 && scale_ > 0) {
    // Classifier-free guidance: one batched call on [x; x] with labels [y; ∅],
    // counted as 2 evaluations (it costs two) — ε̃ = ε(x,∅) + s (ε(x,y) − ε(x,∅)).
    auto null = torch::full_like(labels_, net_->num_classes());
    auto out = net_->predict(torch::cat({x_t, x_t}), torch::cat({ts, ts}), torch::cat({labels_, null}));
    context_.nfe += 2;
    auto both = eps_from_prediction(prediction_type(), out, torch::cat({x_t, x_t}),
                                    torch::cat({alpha_bar, alpha_bar}));
    auto cond = both.slice(0, 0, n), uncond = both.slice(0, n);
    eps = uncond + scale_ * (cond - uncond);
  } else {
    // Guidance off: a conditional model is conditioned on the labels (s = 1).
    auto out = net_->predict(x_t, ts, net_->num_classes() > 0 ? labels_ : torch::Tensor());
    context_.nfe += 1;
    eps = eps_from_prediction(prediction_type(), out, x_t, alpha_bar);
  }
  if (classifier_ != nullptr && scale_ > 0) {
    eps = classifier_guided_eps(eps, x_t, ts, *classifier_, labels_, scale_, alpha_bar);
    context_.nfe += 1;
  }
  return eps;
}

}  // namespace genfw
