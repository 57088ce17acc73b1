#pragma once
/// What every component shares: its kind, the capabilities models offer, the
/// data description, and the context a factory receives.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

enum class Kind { dataset, model, objective, sampler, metric };
GENFW_API const char* kind_name(Kind kind);

/// What a model can do. Objectives, samplers and metrics ask for capabilities,
/// never for model names (docs/design.md, "Capabilities").
enum class Capability {
  score,             ///< s(x, σ) ≈ ∇x log p_σ(x)                 (ScoreModel)
  noise_prediction,  ///< ε(x_t, t) under a discrete β schedule     (NoisePredictor)
  density,           ///< exact log p(x) and sampling              (DensityModel)
  latent_variable,   ///< q(z|x), p(x|z)                           (LatentVariableModel)
  generator,         ///< x = G(z), z ~ N(0, I)                    (GeneratorModel)
  discriminator,     ///< D(x) → logit                             (DiscriminatorModel)
  classifier,        ///< p(y | x_t, t)                            (NoisyClassifier)
  super_resolution,  ///< conditioned on a low-resolution image      (LowResolutionConditioned)
};
GENFW_API const char* capability_name(Capability capability);
GENFW_API std::vector<Capability> all_capabilities();

/// Shape and value range of one sample, as the dataset yields it. Samples are
/// logged in this same "data space".
struct GENFW_API DataInfo {
  std::string name;                 ///< dataset plugin name
  std::vector<int64_t> shape;       ///< one sample: {C, H, W} or {D}
  double low = -1.0;                ///< value range of the data
  double high = 1.0;
  int64_t num_classes = 0;          ///< 0 = unlabelled
  bool discrete_levels = false;     ///< values are k/255-style quantised pixels (for bits/dim)
  int64_t levels = 256;             ///< number of quantisation levels when discrete
  /// Training augmentation ([data] hflip): the trainer flips each image of a training batch
  /// left-right with probability 1/2. Metrics, references and floors see the data as it is.
  bool horizontal_flip = false;

  bool is_image() const { return shape.size() == 3; }
  int64_t dim() const;              ///< scalars in one sample: the product of shape (the one place it is computed)
};

/// A batch: x in data space, y class labels (int64) or undefined.
struct Batch {
  torch::Tensor x;
  torch::Tensor y;
};

/// What a factory knows besides its own options.
struct BuildContext {
  DataInfo data;
  torch::Device device = torch::kCPU;
  std::string experiment_dir;       ///< folder of the experiment file (relative paths)
  std::string cache_dir;            ///< where components may cache derived artefacts
  std::string split = "train";      ///< datasets: which split to yield, "train" or "test"
};

/// Base of every component. Its destructor is the key function, defined in the
/// host library, so RTTI and exceptions are shared across the plugin boundary.
class GENFW_API Component {
 public:
  virtual ~Component();
};

}  // namespace genfw
