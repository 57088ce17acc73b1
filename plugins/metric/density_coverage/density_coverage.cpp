/// Density and coverage (Naeem et al. 2020) of the samples against the
/// reference, on the run's shared features: fidelity and diversity read from
/// the real features' k-NN balls only, so outliers among the real data do not
/// inflate them as they do precision and recall.
#include "genfw/sdk.hpp"

#include "density_coverage.hpp"
#include "../precision_recall/compared_features.hpp"

namespace {

using namespace genfw;

class DensityCoverageMetric : public Metric {
 public:
  struct Settings {
    int64_t k = 5;
    int64_t count = 0;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .integer("k", &Settings::k,
                     "neighbours whose distance is each real feature's ball radius (the paper's k = 5)", at_least(1))
            .integer("count", &Settings::count,
                     "examples of each set compared (evenly strided); 0 = as many as the smaller set holds, since "
                     "coverage moves with the ratio of the two sizes (the paper compares equal sets)",
                     at_least(0));
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  DensityCoverageMetric(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  MetricResult compute(MetricContext& context) override {
    const std::string owner = "metric 'density_coverage'";
    auto compared = metric::compared_features(context, owner, settings_.count, settings_.k);
    auto values = metric::density_and_coverage(compared.real, compared.samples, settings_.k);
    MetricResult result;
    result.values["density"] = values.density;
    result.values["coverage"] = values.coverage;
    result.describe("density", Better::higher);
    result.describe("coverage", Better::higher);
    metric::record_compared(result, context, compared, settings_.k,
                            "density and coverage (Naeem et al. 2020): real k-NN balls, open (distance < NND_k), "
                            "float64 Euclidean distances");
    const int64_t n = compared.real.size(0), m = compared.samples.size(0);
    result.provenance["coverage_if_same_distribution"] =
        shortest_number(metric::expected_coverage_same_distribution(n, m, settings_.k));
    return result;
  }

 private:
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<DensityCoverageMetric>(
      "density_coverage", Kind::metric,
      "Density and coverage (Naeem et al. 2020, k = 5): density = mean number of real k-NN balls holding a "
      "sample, over k (fidelity; 1 in expectation for samples from the data distribution, above 1 when samples "
      "crowd dense regions), coverage = share of real balls holding a sample (diversity; 1 − 2^−k ≈ 0.97 for "
      "equal sets from one distribution). Balls of real features only, so robust to outliers");
}
