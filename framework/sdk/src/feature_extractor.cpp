// The feature extractors of sample-quality metrics (genfw/features.hpp):
// identity, the in-domain classifier (trained once, cached) and a TorchScript module.
#include "genfw/features.hpp"

#include <torch/script.h>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>

#include "genfw/artefact_cache.hpp"
#include "genfw/digest.hpp"
#include "genfw/error.hpp"
#include "genfw/quantize.hpp"
#include "genfw/sha256.hpp"
#include "image_codes.hpp"

namespace genfw::metric {

FeatureExtractor::~FeatureExtractor() = default;

Extracted FeatureExtractor::extract(const torch::Tensor& x, torch::Device device, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> features, probabilities;
  for (int64_t start = 0; start < x.size(0); start += batch_size) {
    auto part = x.slice(0, start, std::min(x.size(0), start + batch_size)).to(device, torch::kFloat32);
    auto out = extract_batch(part);
    features.push_back(out.features.to(torch::kCPU, torch::kFloat32));
    if (out.probabilities.defined()) probabilities.push_back(out.probabilities.to(torch::kCPU, torch::kFloat64));
  }
  GENFW_CHECK(!features.empty(), "feature extractor '", name, "': no samples to extract");
  Extracted all;
  all.features = torch::cat(features);
  if (!probabilities.empty()) all.probabilities = torch::cat(probabilities);
  return all;
}

ClassifierNetImpl::ClassifierNetImpl(int64_t channels, int64_t width, int64_t classes)
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

std::pair<torch::Tensor, torch::Tensor> ClassifierNetImpl::forward(const torch::Tensor& x) {
  auto h = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
  h = torch::max_pool2d(torch::relu(bn2(conv2(h))), 2);
  h = torch::adaptive_avg_pool2d(h, {4, 4}).flatten(1);
  auto features = torch::relu(fc1(h));
  return {features, fc2(features)};
}

// ---------------------------------------------------------------------------
// identity

class IdentityExtractor : public FeatureExtractor {
 public:
  IdentityExtractor() {
    name = "identity";
    digest = ContentDigest().text("identity-v1").hex();
    preprocessing = "none (raw coordinates, flattened)";
  }
  Extracted extract_batch(const torch::Tensor& x) override { return {x.flatten(1), {}}; }
  bool has_probabilities() const override { return false; }
};

// ---------------------------------------------------------------------------
// in-domain classifier



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

/// What the classifier sees: 8-bit codes mapped to [-1, 1], exactly equal for
/// the same images read in any range (so one cached classifier serves both).
torch::Tensor classifier_input(const torch::Tensor& x, double low, double high) {
  return image_codes(x, low, high) * (2.0 / 255.0) - 1.0;
}

// Digest of the examples (x and labels) a dataset yields, in index order: what a
// cached artefact derived from the data is keyed by, so two datasets that share
// a plugin name but not their content never share a cache entry.
/// Digest of every example of `data` (images as their 8-bit codes, so the range
/// they are read in does not matter) and its label.
std::string dataset_digest(Dataset& data, const DataInfo& info) {
  ContentDigest h;
  const int64_t n = data.size();
  h.bytes(&n, sizeof n);
  for (int64_t start = 0; start < n; start += 1000) {
    Batch b = data.get(torch::arange(start, std::min(n, start + 1000), torch::kLong));
    h.tensor(info.is_image() ? image_codes(b.x, info.low, info.high).to(torch::kUInt8) : b.x);
    if (b.y.defined()) h.tensor(b.y);
  }
  return h.hex();
}

/// The classifier's training recipe (Adam, cosine decay from this rate, batches of this size).
constexpr double kClassifierLearningRate = 1e-3;
constexpr int64_t kClassifierBatch = 128;

/// What a trained classifier is determined by: its initial weights (its
/// architecture and initialisation under its seed), its recipe and epochs, and
/// the examples it is trained and tested on, as read. Not the data's range: the
/// classifier sees 8-bit codes mapped to [-1, 1], so one serves experiments
/// whatever range they train in.
CacheKey classifier_key(const ExtractorConfig& config, const MetricContext& context) {
  const DataInfo& data = context.data;
  std::string initial_weights;
  {
    LocalSeed seed(uint64_t(config.classifier_seed));  // the same initialisation the trained one starts from
    initial_weights = module_digest(*ClassifierNet(data.shape[0], config.classifier_width, data.num_classes));
  }
  std::ostringstream learning_rate;
  learning_rate << std::setprecision(17) << kClassifierLearningRate;
  return CacheKey("metric_extractors")
      .add("extractor", "classifier")
      .add("data", data.name)
      .add("initial_weights", initial_weights)
      .add("optimizer", "adam,cosine")
      .add("lr", learning_rate.str())
      .add("batch", kClassifierBatch)
      .add("epochs", config.classifier_epochs)
      .add("train", dataset_digest(*context.train_data, data))
      .add("test", context.test_data ? dataset_digest(*context.test_data, data) : std::string("none"));
}

std::atomic<int64_t>& classifier_trainings() {
  static std::atomic<int64_t> count{0};
  return count;
}

/// Image samples are scored as the image files they stand for, as FID and IS
/// implementations score saved PNGs: a sampler's out-of-range values count as
/// saturated pixels, not as far-away features.
constexpr const char* kAsImageFile = "clamped to the data range and rounded to 8 bits";


static std::string format_accuracy(double a) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << a;
  return out.str();
}

ClassifierExtractor::ClassifierExtractor(const ExtractorConfig& config, const MetricContext& context) {
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
  device_ = context.device;
  name = "classifier(cnn-v2,width=" + std::to_string(config.classifier_width) +
         ",epochs=" + std::to_string(config.classifier_epochs) + ",seed=" + std::to_string(config.classifier_seed) + ")";
  // What the network sees, not the data's own range: runs trained in [0, 1]
  // and in [-1, 1] are scored on the same inputs and stay comparable.
  preprocessing = std::string(kAsImageFile) + ", data range -> [-1, 1]";

  CachedArtefact entry(context.cache_dir, "classifier-" + data.name, classifier_key(config, context));
  torch::Tensor accuracy;
  const bool cached = entry.cached();
  {
    // Initialisation and training draw from the local seed, never from the runner's stream.
    LocalSeed seed(uint64_t(config.classifier_seed));
    net_ = ClassifierNet(data.shape[0], config.classifier_width, data.num_classes);
    net_->to(device_);
    if (!cached) train(config, *context.train_data);
  }
  if (cached) {
    torch::serialize::InputArchive archive;
    entry.load(archive);
    net_->load(archive);
    archive.read("test_accuracy", accuracy);
    trained_now = false;
  } else {
    accuracy = torch::tensor(context.test_data ? test_accuracy(*context.test_data) : -1.0,
                             torch::kFloat64);
    torch::serialize::OutputArchive archive;
    net_->save(archive);
    archive.write("test_accuracy", accuracy);
    entry.save(archive);
    trained_now = true;
  }
  net_->eval();
  net_->to(context.device);
  cache_file = entry.path();
  test_accuracy_value = accuracy.item<double>();
  digest = module_digest(*net_);
  provenance["extractor_test_accuracy"] =
      test_accuracy_value < 0 ? std::string("n/a (no test split)") : format_accuracy(test_accuracy_value);
}

Extracted ClassifierExtractor::extract_batch(const torch::Tensor& x) {
  auto [features, logits] = net_->forward(classifier_input(x, low_, high_));
  return {features, torch::softmax(logits.to(torch::kFloat64), 1)};
}
void ClassifierExtractor::train(const ExtractorConfig& config, Dataset& train_data) {
  classifier_trainings()++;
  torch::AutoGradMode enable_grad(true);  // the runner computes metrics under NoGradGuard
  net_->train();
  torch::optim::Adam optimizer(net_->parameters(), torch::optim::AdamOptions(kClassifierLearningRate));
  const int64_t n = train_data.size(), batch = kClassifierBatch;
  const int64_t total_steps = config.classifier_epochs * ((n + batch - 1) / batch);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < config.classifier_epochs; ++epoch) {
    auto order = torch::randperm(n, torch::kLong);
    for (int64_t start = 0; start < n; start += batch, ++step) {
      // Cosine learning-rate decay: a few epochs reach a good optimum.
      double lr = kClassifierLearningRate * 0.5 * (1.0 + std::cos(M_PI * double(step) / double(total_steps)));
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      Batch b = train_data.get(order.slice(0, start, std::min(n, start + batch)));
      GENFW_CHECK(b.y.defined(), "metric extractor 'classifier': the train split yields no labels");
      auto logits = net_->forward(classifier_input(b.x.to(device_), low_, high_)).second;
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

double ClassifierExtractor::test_accuracy(Dataset& test_data) {
  torch::NoGradGuard no_grad;
  net_->eval();
  const int64_t n = test_data.size();
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += 500) {
    Batch b = test_data.get(torch::arange(start, std::min(n, start + 500), torch::kLong));
    if (!b.y.defined()) return -1.0;
    auto predicted = net_->forward(classifier_input(b.x.to(device_), low_, high_)).second.argmax(1);
    correct += predicted.eq(b.y.to(device_, torch::kLong)).sum().item<int64_t>();
  }
  return n > 0 ? double(correct) / double(n) : -1.0;
}


// ---------------------------------------------------------------------------
// TorchScript

/// tools/export_pytorch_fid.py's digest of a module's state, recomputed here:
/// SHA-256 over the parameters and buffers sorted by qualified name, each as
/// name \0 dtype ("float32") \0 sizes ("64,3,3,3") \0 raw little-endian bytes.
/// Independent of how the file was serialized, so it identifies the weights.
std::string canonical_parameters_sha256(const torch::jit::Module& module) {
  static const std::map<c10::ScalarType, std::string> python_names{
      {c10::kFloat, "float32"}, {c10::kDouble, "float64"}, {c10::kHalf, "float16"}, {c10::kBFloat16, "bfloat16"},
      {c10::kLong, "int64"},    {c10::kInt, "int32"},      {c10::kShort, "int16"},  {c10::kChar, "int8"},
      {c10::kByte, "uint8"},    {c10::kBool, "bool"}};
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : module.named_parameters(true)) state[item.name] = item.value;
  for (const auto& item : module.named_buffers(true)) state[item.name] = item.value;
  Sha256 sha;
  for (const auto& [name, tensor] : state) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    auto dtype = python_names.find(t.scalar_type());
    GENFW_CHECK(dtype != python_names.end(), "metric extractor 'torchscript': tensor '", name, "' has dtype ",
                t.dtype().name(), ", which the parameter digest does not cover");
    std::string sizes;
    for (int64_t size : t.sizes()) sizes += (sizes.empty() ? "" : ",") + std::to_string(size);
    sha.update(name).update("\0", 1).update(dtype->second).update("\0", 1).update(sizes).update("\0", 1);
    sha.update(t.data_ptr(), size_t(t.numel()) * t.element_size());
  }
  return sha.hex();
}

/// pytorch-fid's published FID weights, pt_inception-2015-12-05-6726825d.pth:
/// torch.hub's convention puts the start of the file's SHA-256 in its name.
constexpr const char* kPytorchFidWeightsSha256Prefix = "6726825d";

/// Whether the module is pytorch-fid's Inception as exported by
/// tools/export_pytorch_fid.py: the state matches the digest recorded at export,
/// and that state came from the published weights. Anything else is allowed,
/// with a loud warning, but its numbers are not comparable with papers.
std::map<std::string, std::string> verify_torchscript_module(const torch::jit::Module& module, const std::string& path) {
  std::map<std::string, std::string> provenance;
  auto warn = [&](const std::string& why) {
    std::cerr << "\nWARNING: metric extractor " << path << ": " << why
              << ".\nWARNING: FID/IS from it are NOT comparable with published numbers (those use pytorch-fid's "
                 "Inception; export it with tools/export_pytorch_fid.py).\n\n";
    provenance["extractor_verified"] = "no: " + why;
  };
  if (!module.hasattr("genfw_parameters_sha256") || !module.hasattr("genfw_source_weights_sha256")) {
    warn("it carries no genfw export digests, so its weights cannot be identified");
    return provenance;
  }
  const std::string recorded = module.attr("genfw_parameters_sha256").toStringRef();
  const std::string actual = canonical_parameters_sha256(module);
  GENFW_CHECK(recorded == actual, "metric extractor 'torchscript': ", path,
              ": its parameters do not match the digest recorded when it was exported (recorded ", recorded,
              ", computed ", actual, "): the file was altered or damaged; export it again");
  const std::string source = module.attr("genfw_source_weights_sha256").toStringRef();
  provenance["extractor_parameters_sha256"] = actual;
  provenance["extractor_source_weights_sha256"] = source;
  if (source.rfind(kPytorchFidWeightsSha256Prefix, 0) == 0) {
    provenance["extractor_verified"] = "pytorch-fid FID Inception-v3 (pt_inception-2015-12-05-6726825d.pth)";
  } else {
    warn("its weights (SHA-256 " + source + ") are not pytorch-fid's published FID weights (SHA-256 " +
         kPytorchFidWeightsSha256Prefix + "...)");
  }
  return provenance;
}

class TorchScriptExtractor : public FeatureExtractor {
 public:
  TorchScriptExtractor(const ExtractorConfig& config, const MetricContext& context)
      : config_(config), data_(context.data) {
    GENFW_CHECK(!config.torchscript_path.empty(),
                "metric extractor 'torchscript': option 'torchscript_path' is empty");
    GENFW_CHECK(std::filesystem::exists(config.torchscript_path),
                "metric extractor 'torchscript': option 'torchscript_path' = \"", config.torchscript_path,
                "\" does not exist");
    // A FIFO or device would block the load (or never end): only a regular file is a module.
    GENFW_CHECK(std::filesystem::is_regular_file(config.torchscript_path),
                "metric extractor 'torchscript': option 'torchscript_path' = \"", config.torchscript_path,
                "\" is not a regular file (a folder, FIFO or device); expected a TorchScript .pt file");
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
    provenance = verify_torchscript_module(module_, config.torchscript_path);
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
    torch::Tensor logits;
    if (output.isTuple()) {
      auto elements = output.toTuple()->elements();
      GENFW_CHECK(!elements.empty() && elements[0].isTensor(),
                  "metric extractor 'torchscript': forward returned an empty tuple or a non-tensor");
      out.features = elements[0].toTensor();
      if (elements.size() > 1 && elements[1].isTensor()) logits = elements[1].toTensor();
    } else {
      GENFW_CHECK(output.isTensor(),
                  "metric extractor 'torchscript': forward must return a Tensor or a (features, logits) tuple");
      out.features = output.toTensor();
    }
    check_output(out.features, "features", x.size(0));
    if (logits.defined()) {
      check_output(logits, "logits", x.size(0));
      out.probabilities = torch::softmax(logits.flatten(1).to(torch::kFloat64), 1);
    }
    has_probabilities_ = out.probabilities.defined();
    out.features = out.features.flatten(1);
    probed_ = true;
    return out;
  }
  /// Known only after the first batch (a tuple output carries logits).
  bool has_probabilities() const override { return has_probabilities_; }

  /// An outside module's output is checked before anything is scored: one row of
  /// floating-point features (and logits) per input, finite.
  static void check_output(const torch::Tensor& t, const char* what, int64_t inputs) {
    GENFW_CHECK(t.dim() >= 1 && t.size(0) == inputs, "metric extractor 'torchscript': forward returned ", what,
                " of shape ", t.sizes(), " for ", inputs, " inputs; expected ", inputs, " rows, one per input");
    GENFW_CHECK(t.is_floating_point(), "metric extractor 'torchscript': forward returned ", what, " of type ",
                t.scalar_type(), "; expected floating-point values");
    GENFW_CHECK(torch::isfinite(t).all().item<bool>(), "metric extractor 'torchscript': forward returned ", what,
                " with NaN or infinite values");
  }
  bool probed() const { return probed_; }

 private:
  ExtractorConfig config_;
  DataInfo data_;
  torch::jit::script::Module module_;
  bool has_probabilities_ = false;
  bool probed_ = false;
};

// ---------------------------------------------------------------------------

std::unique_ptr<FeatureExtractor> make_extractor(const ExtractorConfig& config,
                                                        const MetricContext& context) {
  std::string kind = config.kind;
  if (kind == "auto") kind = context.data.is_image() ? "classifier" : "identity";
  if (kind == "identity") return std::make_unique<IdentityExtractor>();
  if (kind == "classifier") return std::make_unique<ClassifierExtractor>(config, context);
  if (kind == "torchscript") return std::make_unique<TorchScriptExtractor>(config, context);
  throw Error("metric: option 'extractor' = \"" + config.kind +
              "\" is not one of auto, classifier, torchscript, identity");
}

}  // namespace genfw::metric
