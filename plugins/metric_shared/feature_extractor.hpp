#pragma once
/// Feature extractors for sample-quality metrics (FID, KID, IS), header-only so
/// that every metric plugin and its tests compile the same code.
///
///  - classifier : an in-domain CNN for images (1×28×28, 1×32×32, 3×32×32, any
///                 C×H×W with H, W ≥ 8), trained on the train split on first use
///                 and cached under cache_dir. Features = penultimate layer (128),
///                 probabilities = softmax of its logits. Its test accuracy is
///                 measured once and stored with the weights.
///  - torchscript: a module loaded with torch::jit::load. Expected signature:
///                   forward(x: Tensor[N, C, H, W] float32) -> Tensor[N, F]
///                   or -> Tuple[Tensor[N, F] features, Tensor[N, K] logits]
///                 (outputs with more dimensions are flattened to [N, F]).
///                 Inputs are mapped linearly from the data range to
///                 `input_range`, optionally resized (bilinear) to resize×resize
///                 and grayscale repeated to 3 channels when asked.
///  - identity   : the raw coordinates (x.flatten(1)); no class probabilities.
///
/// Determinism of the classifier: training seeds torch's default CPU generator
/// locally (set_current_seed(classifier_seed)) after saving its state and
/// restores that state afterwards (also on exceptions), so the runner's random
/// stream is unchanged and the same data always gives the same weights.
/// (On CUDA, cuDNN kernels may still make training non-bitwise-reproducible.)
#include <torch/script.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <iostream>
#include <sstream>
#include <string>

#include "genfw/dataset.hpp"
#include "genfw/error.hpp"
#include "genfw/images.hpp"
#include "genfw/metric.hpp"
#include "digest.hpp"
#include "frechet.hpp"

namespace genfw::metric {

struct ExtractorConfig {
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

/// Features (float32 [N, F], CPU) and, when the extractor has them, class
/// probabilities (float32 [N, K], CPU) of a batch in data space.
struct Extracted {
  torch::Tensor features;
  torch::Tensor probabilities;
};

class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  /// x: [n, ...] in data space on any device.
  virtual Extracted extract_batch(const torch::Tensor& x) = 0;
  virtual bool has_probabilities() const = 0;

  /// Extracts in batches of config.batch_size on `device`; results on CPU.
  Extracted extract(const torch::Tensor& x, torch::Device device, int64_t batch_size) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> features, probabilities;
    for (int64_t start = 0; start < x.size(0); start += batch_size) {
      auto part = x.slice(0, start, std::min(x.size(0), start + batch_size)).to(device, torch::kFloat32);
      auto out = extract_batch(part);
      features.push_back(out.features.to(torch::kCPU, torch::kFloat32));
      if (out.probabilities.defined())
        probabilities.push_back(out.probabilities.to(torch::kCPU, torch::kFloat32));
    }
    GENFW_CHECK(!features.empty(), "feature extractor '", name, "': no samples to extract");
    Extracted all;
    all.features = torch::cat(features);
    if (!probabilities.empty()) all.probabilities = torch::cat(probabilities);
    return all;
  }

  std::string name;           ///< e.g. "classifier(cnn-v1,width=32,epochs=3)"
  std::string digest;         ///< weights / file digest (hex)
  std::string preprocessing;  ///< what is done to data-space inputs
  std::map<std::string, std::string> provenance;  ///< extra entries (accuracy, cache file)
};

// ---------------------------------------------------------------------------
// identity

class IdentityExtractor : public FeatureExtractor {
 public:
  IdentityExtractor() {
    name = "identity";
    digest = Fnv1a().text("identity-v1").hex();
    preprocessing = "none (raw coordinates, flattened)";
  }
  Extracted extract_batch(const torch::Tensor& x) override { return {x.flatten(1), {}}; }
  bool has_probabilities() const override { return false; }
};

// ---------------------------------------------------------------------------
// in-domain classifier

/// conv(C→w)+BN+ReLU+pool2 → conv(w→2w)+BN+ReLU+pool2 → adaptive avg 4×4 →
/// fc(32w→128)+ReLU (features) → fc(128→classes) (logits).
struct ClassifierNetImpl : torch::nn::Module {
  ClassifierNetImpl(int64_t channels, int64_t width, int64_t classes)
      : conv1(torch::nn::Conv2dOptions(channels, width, 3).padding(1)),
        bn1(width),
        conv2(torch::nn::Conv2dOptions(width, 2 * width, 3).padding(1)),
        bn2(2 * width),
        fc1(2 * width * 16, 128),
        fc2(128, classes) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  /// x in [−1, 1]; returns {features [N, 128], logits [N, classes]}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    h = torch::max_pool2d(torch::relu(bn2(conv2(h))), 2);
    h = torch::adaptive_avg_pool2d(h, {4, 4}).flatten(1);
    auto features = torch::relu(fc1(h));
    return {features, fc2(features)};
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(ClassifierNet);

/// Saves torch's default CPU generator state, seeds it, restores on scope exit.
class LocalSeed {
 public:
  explicit LocalSeed(uint64_t seed) : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    saved_ = generator_.get_state();
    generator_.set_current_seed(seed);
  }
  ~LocalSeed() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(saved_);
  }
  LocalSeed(const LocalSeed&) = delete;
  LocalSeed& operator=(const LocalSeed&) = delete;

 private:
  at::Generator generator_;
  torch::Tensor saved_;
};

/// How many times a classifier was trained in this process (tests check cache hits).
inline std::atomic<int64_t>& classifier_trainings() {
  static std::atomic<int64_t> count{0};
  return count;
}

/// Image samples are scored as the image files they stand for, as FID and IS
/// implementations score saved PNGs: a sampler's out-of-range values count as
/// saturated pixels, not as far-away features.
constexpr const char* kAsImageFile = "clamped to the data range and rounded to 8 bits";

inline torch::Tensor to_unit_range(const torch::Tensor& x, double low, double high) {
  return (x - low) * (2.0 / (high - low)) - 1.0;
}

class ClassifierExtractor : public FeatureExtractor {
 public:
  /// Loads the cached classifier for this data and config, or trains one.
  ClassifierExtractor(const ExtractorConfig& config, const MetricContext& context) {
    const DataInfo& data = context.data;
    GENFW_CHECK(data.is_image(), "metric extractor 'classifier': needs image data [C, H, W], got shape of ",
                data.shape.size(), " dimensions (use extractor = \"identity\" for vectors)");
    GENFW_CHECK(data.shape[1] >= 8 && data.shape[2] >= 8,
                "metric extractor 'classifier': images must be at least 8×8, got ", data.shape[1], "×",
                data.shape[2]);
    GENFW_CHECK(data.num_classes >= 2, "metric extractor 'classifier': dataset '", data.name,
                "' has no class labels (num_classes = ", data.num_classes,
                "); use extractor = \"torchscript\" with a pretrained network");
    GENFW_CHECK(context.train_data != nullptr,
                "metric extractor 'classifier': the metric context has no train split to train on");
    low_ = data.low;
    high_ = data.high;
    channels_ = data.shape[0];
    device_ = context.device;
    name = "classifier(cnn-v1,width=" + std::to_string(config.classifier_width) +
           ",epochs=" + std::to_string(config.classifier_epochs) + ",seed=" + std::to_string(config.classifier_seed) + ")";
    // What the network sees, not the data's own range: runs trained in [0, 1]
    // and in [-1, 1] are scored on the same inputs and stay comparable.
    preprocessing = std::string(kAsImageFile) + ", data range -> [-1, 1]";

    std::ostringstream key;
    // The data range is not part of the key: inputs are mapped to [-1, 1] first,
    // so one classifier serves experiments whatever range they train in.
    key << name << "|" << data.name << "|" << data.shape[0] << "x" << data.shape[1] << "x" << data.shape[2]
        << "|classes=" << data.num_classes
        << "|train=" << context.train_data->size();
    const std::string key_hash = Fnv1a().text(key.str()).hex();

    std::string path;
    if (!context.cache_dir.empty()) {
      std::filesystem::path dir = std::filesystem::path(context.cache_dir) / "metric_extractors";
      std::filesystem::create_directories(dir);
      path = (dir / ("classifier-" + data.name + "-" + key_hash + ".pt")).string();
    }
    torch::Tensor accuracy;
    const bool cached = !path.empty() && std::filesystem::exists(path);
    {
      // Initialisation and training draw from the local seed, never from the runner's stream.
      LocalSeed seed(uint64_t(config.classifier_seed));
      net_ = ClassifierNet(channels_, config.classifier_width, data.num_classes);
      net_->to(device_);
      if (!cached) train(config, *context.train_data);
    }
    if (cached) {
      torch::serialize::InputArchive archive;
      archive.load_from(path);
      net_->load(archive);
      archive.read("test_accuracy", accuracy);
      trained_now = false;
    } else {
      accuracy = torch::tensor(context.test_data ? test_accuracy(*context.test_data) : -1.0,
                               torch::kFloat64);
      if (!path.empty()) {
        torch::serialize::OutputArchive archive;
        net_->save(archive);
        archive.write("test_accuracy", accuracy);
        // Write then rename, so a concurrent reader never sees half a file.
        const std::string partial = path + ".partial";
        archive.save_to(partial);
        std::filesystem::rename(partial, path);
      }
      trained_now = true;
    }
    net_->eval();
    net_->to(context.device);
    cache_file = path;
    test_accuracy_value = accuracy.item<double>();
    digest = module_digest(*net_);
    provenance["extractor_test_accuracy"] =
        test_accuracy_value < 0 ? std::string("n/a (no test split)") : format_accuracy(test_accuracy_value);
  }

  Extracted extract_batch(const torch::Tensor& x) override {
    auto [features, logits] = net_->forward(to_unit_range(quantize_to_8bit(x, low_, high_), low_, high_));
    return {features, torch::softmax(logits.to(torch::kFloat64), 1)};
  }
  bool has_probabilities() const override { return true; }

  bool trained_now = false;
  double test_accuracy_value = -1.0;
  std::string cache_file;

 private:
  static std::string format_accuracy(double a) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(4) << a;
    return out.str();
  }

  void train(const ExtractorConfig& config, Dataset& train_data) {
    classifier_trainings()++;
    torch::AutoGradMode enable_grad(true);  // the runner computes metrics under NoGradGuard
    net_->train();
    torch::optim::Adam optimizer(net_->parameters(), torch::optim::AdamOptions(1e-3));
    const int64_t n = train_data.size(), batch = 128;
    const int64_t total_steps = config.classifier_epochs * ((n + batch - 1) / batch);
    int64_t step = 0;
    for (int64_t epoch = 0; epoch < config.classifier_epochs; ++epoch) {
      auto order = torch::randperm(n, torch::kLong);
      for (int64_t start = 0; start < n; start += batch, ++step) {
        // Cosine learning-rate decay: a few epochs reach a good optimum.
        double lr = 1e-3 * 0.5 * (1.0 + std::cos(M_PI * double(step) / double(total_steps)));
        for (auto& group : optimizer.param_groups())
          static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
        Batch b = train_data.get(order.slice(0, start, std::min(n, start + batch)));
        GENFW_CHECK(b.y.defined(), "metric extractor 'classifier': the train split yields no labels");
        auto logits = net_->forward(to_unit_range(b.x.to(device_), low_, high_)).second;
        auto loss = torch::nn::functional::cross_entropy(logits, b.y.to(device_, torch::kLong));
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
      }
      // Minutes of silence on first use would look like a hang.
      std::cerr << "metric extractor: trained the in-domain classifier for epoch " << epoch + 1 << "/"
                << config.classifier_epochs << " (first use; cached afterwards)" << std::endl;
    }
    net_->eval();
  }

  double test_accuracy(Dataset& test_data) {
    torch::NoGradGuard no_grad;
    net_->eval();
    const int64_t n = test_data.size();
    int64_t correct = 0;
    for (int64_t start = 0; start < n; start += 500) {
      Batch b = test_data.get(torch::arange(start, std::min(n, start + 500), torch::kLong));
      if (!b.y.defined()) return -1.0;
      auto predicted = net_->forward(to_unit_range(b.x.to(device_), low_, high_)).second.argmax(1);
      correct += predicted.eq(b.y.to(device_, torch::kLong)).sum().item<int64_t>();
    }
    return n > 0 ? double(correct) / double(n) : -1.0;
  }

  ClassifierNet net_{nullptr};
  double low_ = -1.0, high_ = 1.0;
  int64_t channels_ = 1;
  torch::Device device_ = torch::kCPU;
};

// ---------------------------------------------------------------------------
// TorchScript

class TorchScriptExtractor : public FeatureExtractor {
 public:
  TorchScriptExtractor(const ExtractorConfig& config, const MetricContext& context)
      : config_(config), data_(context.data) {
    GENFW_CHECK(!config.torchscript_path.empty(),
                "metric extractor 'torchscript': option 'torchscript_path' is empty");
    GENFW_CHECK(std::filesystem::exists(config.torchscript_path),
                "metric extractor 'torchscript': option 'torchscript_path' = \"", config.torchscript_path,
                "\" does not exist");
    GENFW_CHECK(config.input_range.size() == 2 && config.input_range[0] < config.input_range[1],
                "metric extractor 'torchscript': option 'input_range' must be [low, high] with low < high");
    try {
      module_ = torch::jit::load(config.torchscript_path, context.device);
    } catch (const c10::Error& e) {
      throw Error("metric extractor 'torchscript': cannot load '" + config.torchscript_path +
                  "': " + e.what_without_backtrace());
    }
    module_.eval();
    name = "torchscript(" + std::filesystem::path(config.torchscript_path).filename().string() + ")";
    digest = file_digest(config.torchscript_path);
    std::ostringstream pre;
    if (data_.is_image()) pre << kAsImageFile << ", ";
    pre << std::setprecision(17) << "data range -> [" << config.input_range[0] << ", " << config.input_range[1] << "]";
    if (config.resize > 0) pre << ", bilinear resize to " << config.resize << "x" << config.resize;
    if (config.grayscale_to_rgb) pre << ", grayscale repeated to 3 channels";
    preprocessing = pre.str();
    provenance["extractor_path"] = config.torchscript_path;
  }

  Extracted extract_batch(const torch::Tensor& x) override {
    const double a = config_.input_range[0], b = config_.input_range[1];
    auto image = data_.is_image() ? quantize_to_8bit(x, data_.low, data_.high) : x;
    // Skip the affine map when the ranges agree: float32 (x − low) would round.
    auto input = (a == data_.low && b == data_.high) ? image
                                                     : (image - data_.low) * ((b - a) / (data_.high - data_.low)) + a;
    if (input.dim() == 4) {
      if (config_.grayscale_to_rgb && input.size(1) == 1) input = input.repeat({1, 3, 1, 1});
      if (config_.resize > 0)
        input = torch::nn::functional::interpolate(
            input, torch::nn::functional::InterpolateFuncOptions()
                       .size(std::vector<int64_t>{config_.resize, config_.resize})
                       .mode(torch::kBilinear)
                       .align_corners(false));
    }
    auto output = module_.forward({input});
    Extracted out;
    if (output.isTuple()) {
      auto elements = output.toTuple()->elements();
      GENFW_CHECK(!elements.empty() && elements[0].isTensor(),
                  "metric extractor 'torchscript': forward returned an empty tuple or a non-tensor");
      out.features = elements[0].toTensor();
      if (elements.size() > 1 && elements[1].isTensor())
        out.probabilities = torch::softmax(elements[1].toTensor().flatten(1).to(torch::kFloat64), 1);
      has_probabilities_ = out.probabilities.defined();
    } else {
      GENFW_CHECK(output.isTensor(),
                  "metric extractor 'torchscript': forward must return a Tensor or a (features, logits) tuple");
      out.features = output.toTensor();
    }
    out.features = out.features.flatten(1);
    probed_ = true;
    return out;
  }
  /// Known only after the first batch (a tuple output carries logits).
  bool has_probabilities() const override { return has_probabilities_; }
  bool probed() const { return probed_; }

 private:
  ExtractorConfig config_;
  DataInfo data_;
  torch::jit::script::Module module_;
  bool has_probabilities_ = false;
  bool probed_ = false;
};

// ---------------------------------------------------------------------------

inline std::unique_ptr<FeatureExtractor> make_extractor(const ExtractorConfig& config,
                                                        const MetricContext& context) {
  std::string kind = config.kind;
  if (kind == "auto") kind = context.data.is_image() ? "classifier" : "identity";
  if (kind == "identity") return std::make_unique<IdentityExtractor>();
  if (kind == "classifier") return std::make_unique<ClassifierExtractor>(config, context);
  if (kind == "torchscript") return std::make_unique<TorchScriptExtractor>(config, context);
  throw Error("metric: option 'extractor' = \"" + config.kind +
              "\" is not one of auto, classifier, torchscript, identity");
}

// ---------------------------------------------------------------------------
// reference statistics of the real data

struct ReferenceFeatures {
  torch::Tensor features;        ///< float32 [n, F], CPU
  GaussianStatistics statistics; ///< float64
  std::string digest;            ///< of μ and Σ
  std::string split;
  int64_t count = 0;
  int64_t split_size = 0;
  bool loaded_from_cache = false;
};

/// Features of min(max_reference, |split|) examples of the split (evenly
/// strided indices, so class-ordered files are covered), their μ and Σ; cached
/// under cache_dir/metric_reference keyed by dataset, split, extractor digest,
/// pre-processing and count.
inline ReferenceFeatures reference_features(FeatureExtractor& extractor, const MetricContext& context,
                                            const std::string& split, int64_t max_reference,
                                            int64_t batch_size) {
  Dataset* dataset = split == "train" ? context.train_data : context.test_data;
  GENFW_CHECK(dataset != nullptr, "metric: option 'reference_split' = \"", split,
              "\" but the metric context has no ", split, " split");
  ReferenceFeatures ref;
  ref.split = split;
  ref.split_size = dataset->size();
  ref.count = std::min(max_reference, ref.split_size);
  GENFW_CHECK(ref.count >= 2, "metric: the ", split, " split has fewer than 2 examples");
  std::ostringstream key;
  key << "reference-v1|" << context.data.name << "|" << split << "|" << ref.split_size << "|" << ref.count
      << "|" << extractor.name << "|" << extractor.digest << "|" << extractor.preprocessing;
  const std::string key_hash = Fnv1a().text(key.str()).hex();
  std::string path;
  if (!context.cache_dir.empty()) {
    auto dir = std::filesystem::path(context.cache_dir) / "metric_reference";
    std::filesystem::create_directories(dir);
    path = (dir / ("reference-" + context.data.name + "-" + split + "-" + key_hash + ".pt")).string();
  }
  if (!path.empty() && std::filesystem::exists(path)) {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    archive.read("features", ref.features);
    archive.read("mean", ref.statistics.mean);
    archive.read("covariance", ref.statistics.covariance);
    ref.statistics.count = ref.features.size(0);
    ref.loaded_from_cache = true;
  } else {
    auto indices = torch::linspace(0, double(ref.split_size - 1), ref.count, torch::kFloat64)
                       .round()
                       .to(torch::kLong);
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < ref.count; start += batch_size) {
      Batch b = dataset->get(indices.slice(0, start, std::min(ref.count, start + batch_size)));
      parts.push_back(extractor.extract(b.x, context.device, batch_size).features);
    }
    ref.features = torch::cat(parts);
    ref.statistics = gaussian_statistics(ref.features);
    if (!path.empty()) {
      torch::serialize::OutputArchive archive;
      archive.write("features", ref.features);
      archive.write("mean", ref.statistics.mean);
      archive.write("covariance", ref.statistics.covariance);
      archive.save_to(path + ".partial");
      std::filesystem::rename(path + ".partial", path);
    }
  }
  ref.digest = Fnv1a().tensor(ref.statistics.mean).tensor(ref.statistics.covariance).hex();
  return ref;
}

}  // namespace genfw::metric
