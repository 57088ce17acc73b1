#pragma once
/// The feature extractor of sample-quality metrics (FID, KID, IS, and any
/// out-of-tree metric), configured once per run by the [features] table, and
/// the service that extracts a sample set's and the real data's features once
/// and shares them with every metric of the run.
///
/// Extractors:
///  - classifier : an in-domain CNN for images (C×H×W, H, W ≥ 8), trained on the
///                 train split on first use and cached under cache_dir. Features =
///                 penultimate layer (128), probabilities = softmax of its logits;
///                 its test accuracy is measured once and stored with the weights.
///  - torchscript: a module loaded with torch::jit::load. Expected signature:
///                   forward(x: Tensor[N, C, H, W] float32) -> Tensor[N, F]
///                   or -> Tuple[Tensor[N, F] features, Tensor[N, K] logits]
///                 Inputs are mapped linearly from the data range to `input_range`,
///                 optionally resized (bilinear) and grayscale repeated to RGB.
///  - identity   : the raw coordinates (x.flatten(1)); no class probabilities.
///
/// Image samples are scored as the 8-bit image files they stand for (clamped to
/// the data range, rounded), as FID and IS implementations score saved PNGs.
/// The classifier's training seeds torch's default CPU generator locally and
/// restores it afterwards, so the run's random stream is unchanged.
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "genfw/dataset.hpp"
#include "genfw/metric.hpp"
#include "genfw/options.hpp"

namespace genfw::metric {

struct GENFW_API ExtractorConfig {
  std::string kind = "auto";        ///< auto | classifier | torchscript | identity
  std::string torchscript_path;
  int64_t resize = 0;               ///< 0 = keep the data's H×W
  std::vector<double> input_range = {-1.0, 1.0};
  bool grayscale_to_rgb = false;
  int64_t classifier_epochs = 5;
  int64_t classifier_width = 32;
  int64_t classifier_seed = 0;
  int64_t batch_size = 250;         ///< extraction batch
};

/// The [features] table: the extractor and the reference data of a run. The
/// members' initialisers (here and in ExtractorConfig) are the table's
/// defaults; each key is bound to its member once (OptionBinding).
struct GENFW_API FeatureSettings {
  ExtractorConfig extractor;
  std::string reference_split = "test";
  int64_t max_reference = 10000;
  /// Also score as many real held-out examples (the other split) as there are
  /// samples, exactly like the samples: the floor each model's value is read against.
  bool floor = true;

  static const Schema& schema();
  static FeatureSettings from_options(const Options& options);
};

/// Features (float32 [N, F], CPU) and, when the extractor has them, class
/// probabilities (float64 [N, K], CPU).
struct Extracted {
  torch::Tensor features;
  torch::Tensor probabilities;
};

class GENFW_API FeatureExtractor {
 public:
  virtual ~FeatureExtractor();
  /// x: [n, ...] in data space on any device.
  virtual Extracted extract_batch(const torch::Tensor& x) = 0;
  virtual bool has_probabilities() const = 0;
  /// Extracts in batches of `batch_size` on `device`; results on CPU.
  Extracted extract(const torch::Tensor& x, torch::Device device, int64_t batch_size);

  std::string name;           ///< e.g. "classifier(cnn-v2,width=32,epochs=5,seed=0)"
  std::string digest;         ///< weights / file digest (hex)
  std::string preprocessing;  ///< what is done to data-space inputs
  std::map<std::string, std::string> provenance;  ///< extra entries (accuracy, file)
};

/// conv(C→w)+BN+ReLU+pool2 → conv(w→2w)+BN+ReLU+pool2 → adaptive avg 4×4 →
/// fc(32w→128)+ReLU (features) → fc(128→classes) (logits).
struct GENFW_API ClassifierNetImpl : torch::nn::Module {
  ClassifierNetImpl(int64_t channels, int64_t width, int64_t classes);
  /// x in [−1, 1]; returns {features [N, 128], logits [N, classes]}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(ClassifierNet);

/// How many times a classifier was trained in this process (tests check cache hits).
GENFW_API std::atomic<int64_t>& classifier_trainings();

class GENFW_API ClassifierExtractor : public FeatureExtractor {
 public:
  /// Loads the cached classifier for this data and config, or trains one.
  ClassifierExtractor(const ExtractorConfig& config, const MetricContext& context);
  Extracted extract_batch(const torch::Tensor& x) override;
  bool has_probabilities() const override { return true; }

  bool trained_now = false;
  double test_accuracy_value = -1.0;
  std::string cache_file;

 private:
  void train(const ExtractorConfig& config, Dataset& train_data);
  double test_accuracy(Dataset& test_data);

  ClassifierNet net_{nullptr};
  double low_ = -1.0, high_ = 1.0;
  torch::Device device_ = torch::kCPU;
};

/// The extractor `config` names ("auto": classifier for images, identity otherwise).
GENFW_API std::unique_ptr<FeatureExtractor> make_extractor(const ExtractorConfig& config,
                                                           const MetricContext& context);

/// Mean and covariance (N−1 normalisation) of features [N, F], float64.
struct GaussianStatistics {
  torch::Tensor mean;        ///< [F] float64
  torch::Tensor covariance;  ///< [F, F] float64
  int64_t count = 0;
};
GENFW_API GaussianStatistics gaussian_statistics(const torch::Tensor& features);

struct ReferenceFeatures {
  torch::Tensor features;        ///< float32 [n, F], CPU
  GaussianStatistics statistics; ///< float64
  std::string digest;            ///< of μ and Σ
  std::string split;
  int64_t count = 0;
  int64_t split_size = 0;
  bool loaded_from_cache = false;
};

/// Features of min(max_reference, |split|) examples of the split (evenly strided
/// indices, so class-ordered files are covered), their μ and Σ; cached under
/// cache_dir/metric_reference (genfw/artefact_cache.hpp), keyed by the examples
/// read, the split, the count and the extractor's digest and preprocessing.
GENFW_API ReferenceFeatures reference_features(FeatureExtractor& extractor, const MetricContext& context,
                                               const std::string& split, int64_t max_reference,
                                               int64_t batch_size);

}  // namespace genfw::metric

namespace genfw {

/// One run's features: the extractor is built once, the samples' features and
/// the reference features are extracted once, whichever metrics ask.
class GENFW_API FeatureService {
 public:
  /// `context`: data description, datasets, device and cache folder (not the samples).
  FeatureService(metric::FeatureSettings settings, const MetricContext& context);
  ~FeatureService();

  const metric::FeatureSettings& settings() const { return settings_; }
  /// Where extraction runs (the metric context's device).
  torch::Device device() const { return context_.device; }
  metric::FeatureExtractor& extractor();
  /// Features of `samples` (computed on first request for this tensor).
  const metric::Extracted& of(const torch::Tensor& samples);
  /// Features and statistics of the reference split.
  const metric::ReferenceFeatures& reference();
  /// Records the extractor (and, when asked, the reference) in a metric's provenance.
  void record_provenance(MetricResult& result, bool with_reference);
  /// How many sample sets were run through the extractor (each once, however many metrics ask).
  int64_t sample_extractions() const { return sample_extractions_; }

  /// Extracts a sample set in place of this process alone, or returns nothing
  /// to leave it to this process: the host's data-parallel ranks each extract
  /// their share of the samples they drew. of() asks it first.
  using SharedExtraction = std::function<std::optional<metric::Extracted>(const torch::Tensor& samples)>;
  void extract_shared_with(SharedExtraction extraction) { shared_extraction_ = std::move(extraction); }

 private:
  metric::FeatureSettings settings_;
  MetricContext context_;
  std::unique_ptr<metric::FeatureExtractor> extractor_;
  torch::Tensor extracted_input_;
  int64_t extracted_version_ = -1;
  int64_t sample_extractions_ = 0;
  metric::Extracted extracted_;
  std::unique_ptr<metric::ReferenceFeatures> reference_;
  SharedExtraction shared_extraction_;
};

/// The features service of a metric context; a clear error when a caller built
/// the context without one.
GENFW_API FeatureService& features_of(const MetricContext& context, const std::string& metric);

}  // namespace genfw
