/// Class accuracy of conditional samples: the fraction the run's feature
/// classifier (the in-domain classifier of [features]) assigns to the class each
/// sample was drawn for — how well class-conditional or guided sampling hits its
/// target (the "classification accuracy" of Dhariwal & Nichol 2021, Table 4,
/// with their ImageNet classifier replaced by the in-domain one).
#include "genfw/sdk.hpp"

namespace {

using namespace genfw;

class ClassAccuracy : public Metric {
 public:
  static Schema schema() { return Schema(); }
  ClassAccuracy(const Options&, const BuildContext&) {}

  MetricResult compute(MetricContext& context) override {
    const std::string owner = "metric 'class_accuracy'";
    GENFW_CHECK(context.sample_labels.defined(), owner,
                ": the samples were drawn for no class (the model is unconditional and no [guidance] "
                "classifier is set); it is defined for class-conditional or guided sampling");
    FeatureService& service = features_of(context, owner);
    const auto& extracted = service.of(checked_samples(context, owner));
    GENFW_CHECK(extracted.probabilities.defined(), owner, ": extractor '", service.extractor().name,
                "' gives no class probabilities");
    auto predicted = extracted.probabilities.argmax(1);
    auto requested = context.sample_labels.to(torch::kCPU, torch::kLong).reshape({-1});
    GENFW_CHECK(requested.size(0) == predicted.size(0), owner, ": ", requested.size(0), " labels for ",
                predicted.size(0), " samples");
    const double accuracy = predicted.eq(requested).to(torch::kFloat64).mean().item<double>();
    MetricResult result;
    result.values["class_accuracy"] = accuracy;
    result.describe("class_accuracy", Better::higher);
    service.record_provenance(result, false);
    result.provenance["samples"] = std::to_string(predicted.size(0));
    result.provenance["estimator"] = "argmax p(y|x) == requested class, fraction";
    return result;
  }
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<ClassAccuracy>("class_accuracy", Kind::metric,
                              "fraction of samples the feature classifier assigns to their requested class "
                              "(Dhariwal & Nichol 2021)");
}
