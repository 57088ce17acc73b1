#pragma once
/// What fid, kid and inception_score share: the extractor options, building
/// the extractor, and the provenance every sample metric records.
#include <sstream>

#include "genfw/sdk.hpp"
#include "feature_extractor.hpp"

namespace genfw::metric {

inline Schema extractor_schema() {
  return Schema()
      .choice("extractor", "auto", {"auto", "classifier", "torchscript", "identity"},
              "feature network: auto = classifier for images, identity for vectors")
      .string("torchscript_path", "",
              "TorchScript module for extractor = \"torchscript\": forward(x[N,C,H,W]) -> features "
              "[N,F] or (features, logits)")
      .integer("resize", 0, "torchscript: bilinear resize of images to resize×resize (0 = none, 299 for Inception)",
               at_least(0))
      .reals("input_range", {-1.0, 1.0}, "torchscript: value range the module expects")
      .boolean("grayscale_to_rgb", false, "torchscript: repeat 1-channel images to 3 channels")
      .choice("reference_split", "test", {"test", "train"}, "split of the real data for reference statistics")
      .integer("max_reference", 10000, "at most this many real examples for the reference", at_least(2))
      .integer("batch_size", 250, "extraction batch size", at_least(1))
      .integer("classifier_epochs", 5, "classifier extractor: training epochs on the train split (5: 90.05% test accuracy on Fashion-MNIST)", at_least(1))
      .integer("classifier_width", 32, "classifier extractor: channels of its first conv layer", at_least(4))
      .integer("classifier_seed", 0, "classifier extractor: its own training seed (runner's RNG untouched)",
               at_least(0));
}

struct SampleMetricOptions {
  ExtractorConfig extractor;
  std::string reference_split;
  int64_t max_reference = 10000;

  SampleMetricOptions(const Options& options) {
    extractor.kind = options.string("extractor");
    extractor.torchscript_path = options.string("torchscript_path");
    extractor.resize = options.integer("resize");
    extractor.input_range = options.reals("input_range");
    extractor.grayscale_to_rgb = options.flag("grayscale_to_rgb");
    extractor.classifier_epochs = options.integer("classifier_epochs");
    extractor.classifier_width = options.integer("classifier_width");
    extractor.classifier_seed = options.integer("classifier_seed");
    extractor.batch_size = options.integer("batch_size");
    reference_split = options.string("reference_split");
    max_reference = options.integer("max_reference");
    GENFW_CHECK(extractor.input_range.size() == 2 && extractor.input_range[0] < extractor.input_range[1],
                options.owner(), ": option 'input_range' must be [low, high] with low < high, got ",
                format_value(extractor.input_range));
    GENFW_CHECK(extractor.kind != "torchscript" || !extractor.torchscript_path.empty(), options.owner(),
                ": option 'torchscript_path' must be set when extractor = \"torchscript\"");
  }
};

inline void record_extractor(const FeatureExtractor& extractor, MetricResult& result) {
  result.provenance["extractor"] = extractor.name;
  result.provenance["extractor_digest"] = "fnv1a64:" + extractor.digest;
  result.provenance["preprocessing"] = extractor.preprocessing;
  for (const auto& [key, value] : extractor.provenance) result.provenance[key] = value;
}

inline void record_reference(const ReferenceFeatures& ref, MetricResult& result) {
  result.provenance["reference_split"] = ref.split;
  result.provenance["reference_count"] = std::to_string(ref.count) + " of " + std::to_string(ref.split_size);
  result.provenance["reference_digest"] = "fnv1a64:" + ref.digest;
}

inline torch::Tensor checked_samples(const MetricContext& context, const std::string& owner) {
  GENFW_CHECK(context.samples.defined() && context.samples.size(0) >= 2, owner,
              ": needs at least 2 samples, got ",
              context.samples.defined() ? context.samples.size(0) : int64_t(0));
  GENFW_CHECK(torch::isfinite(context.samples).all().item<bool>(), owner,
              ": the samples contain NaN or infinity");
  return context.samples;
}

}  // namespace genfw::metric
