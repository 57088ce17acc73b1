#pragma once
/// Models and the capability interfaces they implement. A model is a
/// torch::nn::Module (parameters, buffers, to(device), train/eval) and
/// inherits one interface per capability it offers; the manifest derives its
/// capability list from those base classes (capabilities_of), so compositions
/// are checked before anything is built and the two can never disagree.
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genfw/component.hpp"
#include "genfw/schedules.hpp"

namespace genfw {

/// Parameters trained together by one optimizer (a GAN has two groups).
struct ParameterGroup {
  std::string name;
  std::vector<torch::Tensor> parameters;
};

class GENFW_API Model : public torch::nn::Module, public Component {
 public:
  ~Model() override;
  /// Default: one group "model" holding every parameter.
  virtual std::vector<ParameterGroup> parameter_groups();
};

/// s(x, σ) ≈ ∇x log p_σ(x), p_σ = p_data ∗ N(0, σ²I) (variance-exploding noise).
class GENFW_API ScoreModel {
 public:
  virtual ~ScoreModel();
  /// x: [N, ...] in data space, sigma: [N] noise standard deviations.
  virtual torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) = 0;
  /// The noise levels the model was built/trained for, descending, float64 [L]
  /// (what annealed Langevin and DSM use by default).
  virtual torch::Tensor noise_levels() const = 0;
};

/// Diffusion network: raw output at integer timestep t in [0, T) under its own
/// β schedule, read according to prediction_type().
class GENFW_API NoisePredictor {
 public:
  virtual ~NoisePredictor();
  /// x_t: [N, ...]; t: [N] timesteps, int64, or float32 and fractional when a
  /// denoiser interpolates between timesteps (DiscreteTime::interpolated: embed t
  /// as a real number, or read ᾱ through alpha_bar_at); y: int64 [N] class labels
  /// or undefined (for conditional models, label num_classes() means "no class").
  virtual torch::Tensor predict(const torch::Tensor& x_t, const torch::Tensor& t,
                                const torch::Tensor& y) = 0;
  virtual const DiffusionSchedule& schedule() const = 0;
  virtual PredictionType prediction_type() const = 0;
  virtual int64_t num_classes() const { return 0; }
};

/// Exact density: log p(x) in nats per sample, and sampling.
class GENFW_API DensityModel {
 public:
  virtual ~DensityModel();
  virtual torch::Tensor log_prob(const torch::Tensor& x) = 0;  ///< [N]
  virtual torch::Tensor sample(int64_t n, double temperature) = 0;
};

/// The bijection behind a flow's density, for tools and tests that need z = f(x)
/// and its log-determinant (e.g. checking log|det J| against autograd). An
/// optional part of the density capability: reach it with as<InvertibleFlow>.
class GENFW_API InvertibleFlow {
 public:
  virtual ~InvertibleFlow();
  /// x [N, shape...] in data space → (z [N, D] flattened latent, log|det ∂z/∂x| [N]),
  /// every pre-processing Jacobian included (no dequantisation noise).
  virtual std::pair<torch::Tensor, torch::Tensor> to_latent(const torch::Tensor& x) = 0;
  /// Exact inverse: z [N, D] → x [N, shape...] in data space (no clamping or snapping).
  virtual torch::Tensor from_latent(const torch::Tensor& z) = 0;
  /// The sample DensityModel::sample gives for latent z [N, D] (e.g. temperature·N(0, I)):
  /// from_latent and whatever sampling adds (snapping to pixel levels, clamping), so a
  /// sampler can supply z from its per-sample noise.
  virtual torch::Tensor sample_from_latent(const torch::Tensor& z) = 0;
  /// Network evaluations one from_latent costs, in passes of the whole network (the NFE a
  /// sampler counts): 1 for coupling flows, D for an autoregressive flow inverted one
  /// variable at a time (MAF: D passes of each of its K layers = D whole-network passes).
  virtual int64_t inverse_passes() const { return 1; }
};

/// Diagonal-Gaussian posterior q(z | x).
struct Posterior {
  torch::Tensor mean;
  torch::Tensor log_var;
};

/// VAE-style model: encoder q(z|x), decoder p(x|z), prior N(0, I).
class GENFW_API LatentVariableModel {
 public:
  virtual ~LatentVariableModel();
  virtual Posterior encode(const torch::Tensor& x) = 0;
  /// log p(x | z) per sample [N], nats.
  virtual torch::Tensor decoder_log_likelihood(const torch::Tensor& x, const torch::Tensor& z) = 0;
  /// A sample in data space from p(x | z) (mean == true: its mean).
  virtual torch::Tensor decode(const torch::Tensor& z, bool mean) = 0;
  virtual int64_t latent_dim() const = 0;
};

/// x = G(z), z ~ N(0, I).
class GENFW_API GeneratorModel {
 public:
  virtual ~GeneratorModel();
  virtual torch::Tensor generate(const torch::Tensor& z) = 0;
  virtual int64_t latent_dim() const = 0;
};

/// D(x): one logit (or critic value) per sample [N].
class GENFW_API DiscriminatorModel {
 public:
  virtual ~DiscriminatorModel();
  virtual torch::Tensor discriminate(const torch::Tensor& x) = 0;
};

/// p(y | x_t, t): logits [N, classes] on noised inputs (classifier guidance).
/// It is trained under a β schedule, which must be the sampled model's.
class GENFW_API NoisyClassifier {
 public:
  virtual ~NoisyClassifier();
  virtual torch::Tensor classify(const torch::Tensor& x_t, const torch::Tensor& t) = 0;
  virtual const DiffusionSchedule& schedule() const = 0;
  virtual int64_t num_classes() const = 0;
};

/// A model of x conditioned on a low-resolution version of it: a cascade's
/// super-resolution stage (Ho et al. 2021, "Cascaded Diffusion Models"). Its
/// condition is set per batch before it is evaluated: in training, from the
/// batch itself (low_resolution_of; the trainer does it), in sampling from
/// SampleContext::low_resolution (a base run's samples, or real images
/// downsampled; sampling_denoiser does it).
class GENFW_API LowResolutionConditioned {
 public:
  virtual ~LowResolutionConditioned();
  /// One low-resolution image, {C, h, w}.
  virtual std::vector<int64_t> low_resolution_shape() const = 0;
  /// x [N, C, H, W] in data space → the images [N, C, h, w] the model is trained to
  /// condition on (its downsampling, e.g. averages of s×s blocks).
  virtual torch::Tensor low_resolution_of(const torch::Tensor& x) const = 0;
  /// The condition of later evaluations, one image per row of their input [N, C, h, w]
  /// (an input of k·N rows, e.g. classifier-free guidance's, repeats it).
  virtual void condition_on(const torch::Tensor& low_resolution) = 0;
};

/// The capabilities a model type offers: one per interface it derives from.
template <typename T>
std::vector<Capability> capabilities_of() {
  std::vector<Capability> offered;
  if constexpr (std::is_base_of_v<ScoreModel, T>) offered.push_back(Capability::score);
  if constexpr (std::is_base_of_v<NoisePredictor, T>) offered.push_back(Capability::noise_prediction);
  if constexpr (std::is_base_of_v<DensityModel, T>) offered.push_back(Capability::density);
  if constexpr (std::is_base_of_v<LatentVariableModel, T>) offered.push_back(Capability::latent_variable);
  if constexpr (std::is_base_of_v<GeneratorModel, T>) offered.push_back(Capability::generator);
  if constexpr (std::is_base_of_v<DiscriminatorModel, T>) offered.push_back(Capability::discriminator);
  if constexpr (std::is_base_of_v<NoisyClassifier, T>) offered.push_back(Capability::classifier);
  if constexpr (std::is_base_of_v<LowResolutionConditioned, T>) offered.push_back(Capability::super_resolution);
  return offered;
}

/// The interface of a capability, or nullptr if the model lacks it.
template <typename Interface>
Interface* as(Model& model) {
  return dynamic_cast<Interface*>(&model);
}

/// True when `model`'s capabilities can serve `capability` (directly or derived: a
/// noise predictor has a score through its denoiser, genfw/denoiser.hpp).
GENFW_API bool can_derive(const std::vector<Capability>& offered, Capability capability);

}  // namespace genfw
