// Key functions of every interface crossing the plugin boundary, and the small
// shared pieces of the SDK headers.
#include "genfw/sdk.hpp"

namespace genfw {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

Component::~Component() = default;
Dataset::~Dataset() = default;
Model::~Model() = default;
ScoreModel::~ScoreModel() = default;
NoisePredictor::~NoisePredictor() = default;
DensityModel::~DensityModel() = default;
LatentVariableModel::~LatentVariableModel() = default;
GeneratorModel::~GeneratorModel() = default;
DiscriminatorModel::~DiscriminatorModel() = default;
NoisyClassifier::~NoisyClassifier() = default;
TrainContext::~TrainContext() = default;
Objective::~Objective() = default;
LossObjective::~LossObjective() = default;
Sampler::~Sampler() = default;
Metric::~Metric() = default;

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::dataset: return "dataset";
    case Kind::model: return "model";
    case Kind::objective: return "objective";
    case Kind::sampler: return "sampler";
    case Kind::metric: return "metric";
  }
  return "?";
}

const char* capability_name(Capability capability) {
  switch (capability) {
    case Capability::score: return "score";
    case Capability::noise_prediction: return "noise-prediction";
    case Capability::density: return "density";
    case Capability::latent_variable: return "latent-variable";
    case Capability::generator: return "generator";
    case Capability::discriminator: return "discriminator";
    case Capability::classifier: return "classifier";
  }
  return "?";
}

std::vector<Capability> all_capabilities() {
  return {Capability::score,     Capability::noise_prediction, Capability::density,
          Capability::latent_variable, Capability::generator, Capability::discriminator,
          Capability::classifier};
}

int64_t DataInfo::dim() const {
  int64_t d = 1;
  for (int64_t s : shape) d *= s;
  return d;
}

std::vector<ParameterGroup> Model::parameter_groups() { return {{"model", parameters()}}; }

void LossObjective::train_step(Model& model, const Batch& batch, TrainContext& context) {
  context.update("model", loss(model, batch));
}

std::vector<int64_t> SampleContext::batch_shape(int64_t n) const {
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), data.shape.begin(), data.shape.end());
  return shape;
}

ComponentInfo& ComponentInfo::offer(Capability capability) {
  offers.push_back(capability);
  return *this;
}
ComponentInfo& ComponentInfo::require(std::vector<Capability> any_of) {
  requires_all.push_back(std::move(any_of));
  return *this;
}
ComponentInfo& ComponentInfo::with_version(std::string v) {
  version = std::move(v);
  return *this;
}

}  // namespace genfw
