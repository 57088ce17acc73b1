#pragma once
/// The two sets a k-NN metric (precision/recall, density/coverage) compares:
/// the samples' features and the reference's, as many of each. The papers
/// compare equal sets (Kynkäänniemi et al. 2019: 50 000 and 50 000; Naeem et
/// al. 2020: 10 000 and 10 000), and every one of these values moves with the
/// ratio of the two sizes, so by default the larger set is cut to the
/// smaller's size (evenly strided rows, the same rows on every call).
#include <algorithm>
#include <string>

#include "genfw/sdk.hpp"

namespace genfw::metric {

struct ComparedFeatures {
  torch::Tensor real;     ///< [n, F] reference features, on the metric's device
  torch::Tensor samples;  ///< [n, F] sample features, on the metric's device
};

/// `count` = 0: as many as the smaller set holds; else at most `count` of each.
/// Refused, naming `owner` and option 'k', when a set is too small for k-NN balls.
inline ComparedFeatures compared_features(MetricContext& context, const std::string& owner, int64_t count, int64_t k) {
  FeatureService& service = features_of(context, owner);
  const torch::Tensor& samples = service.of(checked_samples(context, owner)).features;
  const torch::Tensor& real = service.reference().features;
  int64_t n = std::min(samples.size(0), real.size(0));
  if (count > 0) n = std::min(n, count);
  GENFW_CHECK(n >= k + 1, owner, ": option 'k' = ", k, " needs at least ", k + 1, " examples in each set, got ",
              samples.size(0), " samples and ", real.size(0), " reference examples",
              count > 0 ? " (option 'count' = " + std::to_string(count) + ")" : std::string());
  return {knn::evenly_strided_rows(real, n).to(context.device), knn::evenly_strided_rows(samples, n).to(context.device)};
}

/// What every k-NN metric records beside its values: the extractor and reference, the sizes, k.
inline void record_compared(MetricResult& result, MetricContext& context, const ComparedFeatures& compared, int64_t k,
                            const std::string& estimator) {
  context.features->record_provenance(result, true);
  result.provenance["samples"] = std::to_string(compared.samples.size(0)) + " of " +
                                 std::to_string(context.samples.size(0));
  result.provenance["real_compared"] = std::to_string(compared.real.size(0));
  result.provenance["feature_dim"] = std::to_string(compared.real.size(1));
  result.provenance["k"] = std::to_string(k);
  result.provenance["estimator"] = estimator;
}

}  // namespace genfw::metric
