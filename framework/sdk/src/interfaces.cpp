// Key functions of every interface crossing the plugin boundary, and the small
// shared pieces of the SDK headers.
#include "genfw/sdk.hpp"

namespace genfw {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

std::string message_of(const std::exception& error) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error)) return torch_error->what_without_backtrace();
  return error.what();
}

Component::~Component() = default;
Dataset::~Dataset() = default;
Model::~Model() = default;
ScoreModel::~ScoreModel() = default;
NoisePredictor::~NoisePredictor() = default;
DensityModel::~DensityModel() = default;
InvertibleFlow::~InvertibleFlow() = default;
LatentVariableModel::~LatentVariableModel() = default;
GeneratorModel::~GeneratorModel() = default;
DiscriminatorModel::~DiscriminatorModel() = default;
NoisyClassifier::~NoisyClassifier() = default;
LowResolutionConditioned::~LowResolutionConditioned() = default;
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
    case Capability::super_resolution: return "super-resolution";
  }
  return "?";
}

std::vector<Capability> all_capabilities() {
  return {Capability::score,     Capability::noise_prediction, Capability::density,
          Capability::latent_variable, Capability::generator, Capability::discriminator,
          Capability::classifier, Capability::super_resolution};
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

SampleContext SampleContext::for_model(Model& model, int64_t n, DataInfo data, torch::Device device) {
  SampleContext context;
  context.model = &model;
  context.num_samples = n;
  context.data = std::move(data);
  context.device = device;
  context.noise = SampleNoise::seeded_by_torch(n);
  return context;
}

torch::Tensor draw(Sampler& sampler, SampleContext& context) {
  torch::Tensor x;
  if (sampler.needs_gradients()) {
    x = sampler.sample(context);
  } else {
    torch::NoGradGuard no_grad;
    x = sampler.sample(context);
  }
  const auto expected = context.batch_shape(context.num_samples);
  GENFW_CHECK(x.defined() && x.sizes().vec() == expected, "the sampler returned samples of shape ",
              x.defined() ? x.sizes() : c10::IntArrayRef{}, ", expected ", c10::IntArrayRef(expected));
  return x;
}

void SampleContext::count_evaluations(int64_t evaluations) {
  nfe += evaluations;
  if (on_evaluation) on_evaluation(nfe);
}

std::vector<int64_t> SampleContext::batch_shape(int64_t n) const {
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), data.shape.begin(), data.shape.end());
  return shape;
}

// A stream for other samples than the context's would silently break the per-index promise.
static void check_noise_covers(const SampleContext& context) {
  GENFW_CHECK(context.noise.count() == context.num_samples, "SampleContext: the noise stream covers ",
              context.noise.count(), " samples, but num_samples is ", context.num_samples);
}

torch::Tensor SampleContext::normal(at::IntArrayRef sample_shape, torch::ScalarType dtype) {
  check_noise_covers(*this);
  return noise.normal(sample_shape, torch::TensorOptions().dtype(dtype).device(device));
}

torch::Tensor SampleContext::normal_like(const torch::Tensor& x) {
  check_noise_covers(*this);
  return noise.normal_like(x);
}

torch::Tensor SampleContext::uniform(at::IntArrayRef sample_shape, torch::ScalarType dtype) {
  check_noise_covers(*this);
  return noise.uniform(sample_shape, torch::TensorOptions().dtype(dtype).device(device));
}

ComponentInfo& ComponentInfo::require(std::vector<Capability> any_of) {
  requires_all.push_back(std::move(any_of));
  return *this;
}
ComponentInfo& ComponentInfo::with_version(std::string v) {
  version = std::move(v);
  return *this;
}

torch::Tensor checked_samples(const MetricContext& context, const std::string& owner) {
  GENFW_CHECK(context.samples.defined() && context.samples.size(0) >= 2, owner, ": needs at least 2 samples, got ",
              context.samples.defined() ? context.samples.size(0) : int64_t(0));
  GENFW_CHECK(torch::isfinite(context.samples).all().item<bool>(), owner, ": the samples contain NaN or infinity");
  return context.samples;
}

}  // namespace genfw
