/// Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the
/// cubic polynomial kernel on extractor features, mean ± std over subsets.
#include "genfw/sdk.hpp"

#include "kid.hpp"

namespace {

using namespace genfw;

class Kid : public Metric {
 public:
  static Schema schema() {
    return Schema()
        .integer("subsets", 100, "number of random subsets", at_least(1))
        .integer("subset_size", 1000, "examples per subset (capped at what is available)", at_least(2));
  }
  Kid(const Options& options, const BuildContext&)
      : subsets_(options.integer("subsets")), subset_size_(options.integer("subset_size")) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'kid'");
    const auto& features = service.of(checked_samples(context, "metric 'kid'")).features;
    auto kid = metric::kernel_inception_distance(features, service.reference().features, subsets_, subset_size_);
    MetricResult result;
    result.values["kid"] = kid.mean;
    result.values["kid_std"] = kid.std;
    service.record_provenance(result, true);
    result.provenance["samples"] = std::to_string(features.size(0));
    result.provenance["feature_dim"] = std::to_string(features.size(1));
    result.provenance["estimator"] = "unbiased MMD^2, kernel (x.y/d+1)^3, " + std::to_string(kid.subsets) +
                                     " subsets of " + std::to_string(kid.subset_size);
    return result;
  }

 private:
  int64_t subsets_, subset_size_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Kid>("kid", Kind::metric,
                    "Kernel Inception Distance, unbiased polynomial-kernel MMD² (Bińkowski et al. 2018)");
}
