// The run's feature service and its [features] table (genfw/features.hpp):
// every metric's features extracted once, shared.
#include "genfw/features.hpp"

#include "genfw/error.hpp"

namespace genfw::metric {

namespace {

using Binding = OptionBinding<FeatureSettings>;

// The [features] table, each key bound to the member it fills (defaults: the members' own).
const Binding& feature_options() {
  static const Binding binding =
      Binding()
          .choice("extractor", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::kind),
                  {"auto", "classifier", "torchscript", "identity"},
                  "feature network: auto = classifier for images, identity for vectors")
          .string("torchscript_path", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::torchscript_path),
                  "TorchScript module for extractor = \"torchscript\": forward(x[N,C,H,W]) -> features "
                  "[N,F] or (features, logits)")
          .integer("resize", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::resize),
                   "torchscript: bilinear resize of images to resize×resize (0 = none, 299 for Inception)",
                   at_least(0))
          .reals("input_range", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::input_range),
                 "torchscript: value range the module expects")
          .boolean("grayscale_to_rgb", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::grayscale_to_rgb),
                   "torchscript: repeat 1-channel images to 3 channels")
          .choice("reference_split", &FeatureSettings::reference_split, {"test", "train"},
                  "split of the real data for reference statistics")
          .integer("max_reference", &FeatureSettings::max_reference,
                   "at most this many real examples for the reference: of a split of N, the M = max_reference at "
                   "the evenly strided indices round(linspace(0, N-1, M)), so a class-ordered file is covered "
                   "(tools/fid_reference.py --reference-subset M takes the same ones)",
                   at_least(2))
          .boolean("floor", &FeatureSettings::floor,
                   "also score N real examples of the other split (N = the sample count) exactly like the samples: "
                   "the real-data floor of FID/KID and the ceiling of IS at this N, shown as a row of the table")
          .integer("batch_size", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::batch_size),
                   "extraction batch size", at_least(1))
          .integer("classifier_epochs", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::classifier_epochs),
                   "classifier extractor: training epochs on the train split (5: 90.05% test accuracy on "
                   "Fashion-MNIST)",
                   at_least(1))
          .integer("classifier_width", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::classifier_width),
                   "classifier extractor: channels of its first conv layer", at_least(4))
          .integer("classifier_seed", Binding::nested(&FeatureSettings::extractor, &ExtractorConfig::classifier_seed),
                   "classifier extractor: its own training seed (the run's RNG untouched)", at_least(0));
  return binding;
}

}  // namespace

const Schema& FeatureSettings::schema() { return feature_options().schema(); }

FeatureSettings FeatureSettings::from_options(const Options& options) {
  const FeatureSettings s = feature_options().read(options);
  GENFW_CHECK(s.extractor.input_range.size() == 2 && s.extractor.input_range[0] < s.extractor.input_range[1],
              options.owner(), ": option 'input_range' must be [low, high] with low < high, got ",
              format_value(s.extractor.input_range));
  GENFW_CHECK(s.extractor.kind != "torchscript" || !s.extractor.torchscript_path.empty(), options.owner(),
              ": option 'torchscript_path' must be set when extractor = \"torchscript\"");
  return s;
}

}  // namespace genfw::metric

namespace genfw {

FeatureService::FeatureService(metric::FeatureSettings settings, const MetricContext& context)
    : settings_(std::move(settings)), context_(context) {
  context_.samples = torch::Tensor();
  context_.features = nullptr;
}

FeatureService::~FeatureService() = default;

metric::FeatureExtractor& FeatureService::extractor() {
  if (!extractor_) extractor_ = metric::make_extractor(settings_.extractor, context_);
  return *extractor_;
}

const metric::Extracted& FeatureService::of(const torch::Tensor& samples) {
  // Keyed by the tensor itself and its version counter: the same sample set
  // is extracted once however many metrics ask; a new or modified one again.
  if (!extracted_input_.defined() || !extracted_input_.is_same(samples) ||
      extracted_version_ != int64_t(samples._version())) {
    std::optional<metric::Extracted> shared = shared_extraction_ ? shared_extraction_(samples) : std::nullopt;
    extracted_ = shared ? std::move(*shared) : extractor().extract(samples, context_.device, settings_.extractor.batch_size);
    extracted_input_ = samples;
    extracted_version_ = int64_t(samples._version());
    ++sample_extractions_;
  }
  return extracted_;
}

const metric::ReferenceFeatures& FeatureService::reference() {
  if (!reference_) {
    reference_ = std::make_unique<metric::ReferenceFeatures>(metric::reference_features(
        extractor(), context_, settings_.reference_split, settings_.max_reference, settings_.extractor.batch_size));
  }
  return *reference_;
}

void FeatureService::record_provenance(MetricResult& result, bool with_reference) {
  metric::FeatureExtractor& e = extractor();
  result.provenance["extractor"] = e.name;
  result.provenance["extractor_digest"] = "sha256:" + e.digest;
  result.provenance["preprocessing"] = e.preprocessing;
  for (const auto& [key, value] : e.provenance) result.provenance[key] = value;
  if (!with_reference) return;
  const metric::ReferenceFeatures& ref = reference();
  result.provenance["reference_split"] = ref.split;
  result.provenance["reference_count"] = std::to_string(ref.count) + " of " + std::to_string(ref.split_size);
  result.provenance["reference_digest"] = "sha256:" + ref.digest;
}

FeatureService& features_of(const MetricContext& context, const std::string& metric) {
  GENFW_CHECK(context.features != nullptr, metric,
              ": the metric context has no feature service (MetricContext::features); the runner sets one "
              "from the [features] table, tests can make one with genfw::testing::attach_features");
  return *context.features;
}

}  // namespace genfw
