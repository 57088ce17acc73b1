/// Fréchet Inception Distance (Heusel et al. 2017): Fréchet distance between
/// Gaussians fitted to extractor features of samples and of real data.
#include "genfw/sdk.hpp"

#include "frechet.hpp"

namespace {

using namespace genfw;

class Fid : public Metric {
 public:
  static Schema schema() { return Schema(); }
  Fid(const Options&, const BuildContext&) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'fid'");
    const auto& features = service.of(checked_samples(context, "metric 'fid'")).features;
    auto fid = metric::frechet_distance(metric::gaussian_statistics(features), service.reference().statistics);
    MetricResult result;
    result.values["fid"] = fid.distance;
    service.record_provenance(result, true);
    result.provenance["samples"] = std::to_string(features.size(0));
    result.provenance["feature_dim"] = std::to_string(features.size(1));
    result.provenance["estimator"] =
        std::string("frechet(float64, symmetric eigh sqrt, cov N-1") +
        (fid.used_offset ? ", eps=1e-6 offset applied)" : ")");
    return result;
  }
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Fid>("fid", Kind::metric,
                    "Fréchet distance of feature Gaussians, samples vs real data (Heusel et al. 2017)");
}
