#pragma once
#include <functional>
#include <string>

#include "genfw/model.hpp"
#include "genfw/noise.hpp"

namespace genfw {

/// One step of any sampler, reported the same way by all of them so the
/// framework can log trajectories and draw progress uniformly.
struct StepRecord {
  int64_t index = 0;            ///< 0-based step
  int64_t total = 0;            ///< number of steps the sampler will take
  double noise_level = 0.0;     ///< σ or t of this step (sampler-defined)
  torch::Tensor x;              ///< current iterate
  torch::Tensor x0_pred;        ///< predicted clean sample, if the sampler has one
};

/// Everything a sampler needs from the framework.
struct GENFW_API SampleContext {
  /// A context for `n` samples of `data` from `model` on `device` (the rest empty). Its
  /// noise covers samples [0, n) with a seed drawn from torch's default generator, so
  /// code that seeds torch stays repeatable; the pipeline sets the run's stream instead.
  static SampleContext for_model(Model& model, int64_t n, DataInfo data, torch::Device device = torch::kCPU);

  Model* model = nullptr;
  Model* classifier = nullptr;           ///< guidance classifier (offers 'classifier'), or nullptr
  int64_t num_samples = 0;               ///< samples to produce in this call
  DataInfo data;                         ///< shape and range of one sample
  torch::Device device = torch::kCPU;
  torch::Tensor labels;                  ///< class labels [num_samples] to condition/guide on, or undefined
  torch::Tensor x_init;                  ///< starting point (e.g. x_T), or undefined
  /// What a super-resolution model (LowResolutionConditioned) is conditioned on,
  /// [num_samples, C, h, w]: a cascade's base samples or real images downsampled; or undefined.
  torch::Tensor low_resolution;
  int64_t nfe = 0;                       ///< network evaluations so far (per batch, not per sample)
  std::function<void(const StepRecord&)> on_step;  ///< may be empty
  /// Called before every network evaluation with the NFE it brings the batch to (may be
  /// empty). The pipeline polls the stop request and the other ranks' heartbeat here, and
  /// advances progress: it may throw, which ends the sampler within one evaluation.
  std::function<void(int64_t nfe)> on_evaluation;
  /// The noise of these samples, keyed by (run seed, global sample index): a sampler
  /// draws ALL its randomness here so that sample i does not depend on the batch size,
  /// the number of processes or the device. Covers num_samples samples.
  SampleNoise noise;

  /// The one place NFE is counted: adds `evaluations` to nfe, then calls on_evaluation.
  /// A sampler's denoiser (sampling_denoiser, genfw/guidance.hpp) calls it on every call;
  /// a sampler that calls a network directly (prior) calls it itself.
  void count_evaluations(int64_t evaluations);
  void report(const StepRecord& record) const {
    if (on_step) on_step(record);
  }
  /// Shape of a batch of `n` samples: {n, data.shape...}.
  std::vector<int64_t> batch_shape(int64_t n) const;
  /// Standard normal noise [num_samples, sample_shape...] from `noise` on `device`
  /// (float32 unless `dtype` says otherwise); the next draw of every sample's stream.
  torch::Tensor normal(at::IntArrayRef sample_shape, torch::ScalarType dtype = torch::kFloat32);
  /// Standard normal noise shaped, typed and placed like `x` [num_samples, ...].
  torch::Tensor normal_like(const torch::Tensor& x);
  /// Uniform noise in [0, 1) [num_samples, sample_shape...] on `device`.
  torch::Tensor uniform(at::IntArrayRef sample_shape, torch::ScalarType dtype = torch::kFloat32);
};

/// Turns a model (+ noise) into samples in data space, [num_samples, shape...].
/// Call it through draw(), which sets the grad mode and checks the shape.
/// Called under torch::NoGradGuard unless needs_gradients(). The built-in samplers
/// also enter c10::InferenceMode (no autograd bookkeeping), so a model's
/// score()/predict() must not rely on autograd while sampling; classifier guidance
/// (genfw/guidance.hpp) takes the classifier's gradient itself, on fresh leaves.
class GENFW_API Sampler : public Component {
 public:
  ~Sampler() override;
  virtual torch::Tensor sample(SampleContext& context) = 0;
  /// Samplers that differentiate through the model themselves say so.
  virtual bool needs_gradients() const { return false; }
};

}  // namespace genfw

namespace genfw {
/// One sampler call as the framework makes it: under NoGradGuard unless the
/// sampler needs gradients; the result's shape is checked against the context.
GENFW_API torch::Tensor draw(Sampler& sampler, SampleContext& context);
}  // namespace genfw
