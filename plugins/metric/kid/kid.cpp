/// Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the
/// cubic polynomial kernel on extractor features, mean ± std over subsets.
#include "genfw/sdk.hpp"

#include "kid.hpp"

namespace {

using namespace genfw;

class Kid : public Metric {
 public:
  struct Settings {
    int64_t subsets = 100;
    int64_t subset_size = 1000;
    std::string standardize = "auto";
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .integer("subsets", &Settings::subsets, "number of random subsets", at_least(1))
            .integer("subset_size", &Settings::subset_size, "examples per subset (capped at what is available)",
                     at_least(2))
            .choice("standardize", &Settings::standardize, {"auto", "yes", "no"},
                    "scale each feature by the reference's mean and std before the kernel; auto = yes for raw "
                    "coordinates (identity extractor), where the cubic kernel of unscaled values is dominated by "
                    "outliers, no for network features (the paper's KID)");
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  Kid(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'kid'");
    torch::Tensor features = service.of(checked_samples(context, "metric 'kid'")).features;
    torch::Tensor reference = service.reference().features;
    const std::string& standardize = settings_.standardize;
    const bool standardized = standardize == "yes" || (standardize == "auto" && service.extractor().name == "identity");
    if (standardized) {
      auto mean = reference.mean(0), std = reference.std(0).clamp_min(1e-12);
      features = (features - mean) / std;
      reference = (reference - mean) / std;
    }
    auto kid = metric::kernel_inception_distance(features, reference, settings_.subsets, settings_.subset_size);
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
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Kid>("kid", Kind::metric,
                    "Kernel Inception Distance, unbiased polynomial-kernel MMD² (Bińkowski et al. 2018). Made for "
                    "network features (Inception for papers; unbiased at any N, unlike FID); on raw coordinates "
                    "the features are standardized first (standardize = auto), else the value is outlier noise");
}
