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
        .integer("subset_size", 1000, "examples per subset (capped at what is available)", at_least(2))
        .choice("standardize", "auto", {"auto", "yes", "no"},
                "scale each feature by the reference's mean and std before the kernel; auto = yes for raw "
                "coordinates (identity extractor), where the cubic kernel of unscaled values is dominated by "
                "outliers, no for network features (the paper's KID)");
  }
  Kid(const Options& options, const BuildContext&)
      : subsets_(options.integer("subsets")),
        subset_size_(options.integer("subset_size")),
        standardize_(options.string("standardize")) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'kid'");
    torch::Tensor features = service.of(checked_samples(context, "metric 'kid'")).features;
    torch::Tensor reference = service.reference().features;
    const bool standardized = standardize_ == "yes" || (standardize_ == "auto" && service.extractor().name == "identity");
    if (standardized) {
      auto mean = reference.mean(0), std = reference.std(0).clamp_min(1e-12);
      features = (features - mean) / std;
      reference = (reference - mean) / std;
    }
    auto kid = metric::kernel_inception_distance(features, reference, subsets_, subset_size_);
    MetricResult result;
    result.values["kid"] = kid.mean;
    result.values["kid_std"] = kid.std;
    result.describe("kid", Better::lower);
    service.record_provenance(result, true);
    result.provenance["samples"] = std::to_string(features.size(0));
    result.provenance["feature_dim"] = std::to_string(features.size(1));
    result.provenance["estimator"] = "unbiased MMD^2, kernel (x.y/d+1)^3, " + std::to_string(kid.subsets) +
                                     " subsets of " + std::to_string(kid.subset_size) +
                                     (standardized ? ", features standardized by the reference's mean and std" : "");
    return result;
  }

 private:
  int64_t subsets_, subset_size_;
  std::string standardize_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Kid>("kid", Kind::metric,
                    "Kernel Inception Distance, unbiased polynomial-kernel MMD² (Bińkowski et al. 2018). Made for "
                    "network features (Inception for papers; unbiased at any N, unlike FID); on raw coordinates "
                    "the features are standardized first (standardize = auto), else the value is outlier noise");
}
