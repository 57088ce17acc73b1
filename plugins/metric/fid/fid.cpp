/// Fréchet Inception Distance (Heusel et al. 2017): Fréchet distance between
/// Gaussians fitted to extractor features of samples and of real data.
#include "genfw/sdk.hpp"

#include "frechet.hpp"

namespace {

using namespace genfw;

class Fid : public Metric {
 public:
  struct Settings {
    bool infinity = false;
    int64_t infinity_points = 15;
    double infinity_min_fraction = 0.1;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .boolean("infinity", &Settings::infinity,
                     "also report fid_infinity: FID extrapolated to infinitely many samples (Chong & Forsyth 2020), "
                     "free of FID's 1/N bias; use with 5 000+ samples")
            .integer("infinity_points", &Settings::infinity_points,
                     "FID∞: number of subset sizes the line is fitted to", at_least(2))
            .real("infinity_min_fraction", &Settings::infinity_min_fraction,
                  "FID∞: smallest subset as a fraction of the samples (paper: 5 000 of 50 000)", between(0.0, 1.0));
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  Fid(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'fid'");
    const auto& features = service.of(checked_samples(context, "metric 'fid'")).features;
    auto fid = metric::frechet_distance(metric::gaussian_statistics(features), service.reference().statistics);
    MetricResult result;
    result.values["fid"] = fid.distance;
    result.describe("fid", Better::lower);
    service.record_provenance(result, true);
    result.provenance["samples"] = std::to_string(features.size(0));
    result.provenance["feature_dim"] = std::to_string(features.size(1));
    result.provenance["estimator"] =
        std::string("frechet(float64, symmetric eigh sqrt, cov N-1") +
        (fid.used_offset ? ", eps=1e-6 offset applied)" : ")");
    if (settings_.infinity) add_infinity(result, features, service.reference().statistics, context.seed);
    return result;
  }

 private:
  void add_infinity(MetricResult& result, const torch::Tensor& features, const metric::GaussianStatistics& reference,
                    uint64_t seed) const {
    auto fit =
        metric::fid_infinity(features, reference, settings_.infinity_points, settings_.infinity_min_fraction, seed);
    result.values["fid_infinity"] = fit.value;
    result.describe("fid_infinity", Better::lower);
    result.provenance["fid_infinity"] = "linear fit of FID_N against 1/N over " + std::to_string(fit.sizes.size()) +
                                        " subset sizes " + std::to_string(fit.sizes.front()) + ".." +
                                        std::to_string(fit.sizes.back()) + ", slope " + shortest_number(fit.slope);
  }

  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Fid>("fid", Kind::metric,
                    "Fréchet distance of feature Gaussians, samples vs real data (Heusel et al. 2017). Comparable "
                    "with papers only with pytorch-fid's Inception (extractor = \"torchscript\"); biased upwards at "
                    "small N: read it against the table's real-data row at the same N, or use infinity = true. On "
                    "raw coordinates it compares means and covariances only");
}
