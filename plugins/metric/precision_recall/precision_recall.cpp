/// Improved precision and recall (Kynkäänniemi et al. 2019) of the samples
/// against the reference, on the run's shared features: fidelity (precision)
/// and diversity (recall) apart, where FID mixes both.
#include "genfw/sdk.hpp"

#include "compared_features.hpp"
#include "precision_recall.hpp"

namespace {

using namespace genfw;

class PrecisionRecallMetric : public Metric {
 public:
  struct Settings {
    int64_t k = 3;
    int64_t count = 0;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .integer("k", &Settings::k, "neighbours whose distance is each feature's ball radius (the paper's k = 3)",
                     at_least(1))
            .integer("count", &Settings::count,
                     "examples of each set compared (evenly strided); 0 = as many as the smaller set holds, since "
                     "the values move with the ratio of the two sizes (the paper compares equal sets)",
                     at_least(0));
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  PrecisionRecallMetric(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  MetricResult compute(MetricContext& context) override {
    const std::string owner = "metric 'precision_recall'";
    auto compared = metric::compared_features(context, owner, settings_.count, settings_.k);
    auto values = metric::improved_precision_recall(compared.real, compared.samples, settings_.k);
    MetricResult result;
    result.values["precision"] = values.precision;
    result.values["recall"] = values.recall;
    result.describe("precision", Better::higher);
    result.describe("recall", Better::higher);
    metric::record_compared(result, context, compared, settings_.k,
                            "improved precision and recall (Kynkaanniemi et al. 2019): union of k-NN balls, "
                            "closed (distance <= NND_k), float64 Euclidean distances");
    return result;
  }

 private:
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<PrecisionRecallMetric>(
      "precision_recall", Kind::metric,
      "Improved precision and recall (Kynkäänniemi et al. 2019, k = 3): precision = share of samples inside the "
      "union of the real features' k-NN balls (fidelity), recall = share of real features inside the samples' "
      "balls (diversity). Equal sets by default; read against the real-data row at the same N, which is below 1 "
      "(the balls of a finite set do not fill its support)");
}
