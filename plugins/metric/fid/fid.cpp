/// Fréchet Inception Distance (Heusel et al. 2017): Fréchet distance between
/// Gaussians fitted to extractor features of samples and of real data.
#include "genfw/sdk.hpp"

#include "../../metric_shared/frechet.hpp"
#include "../../metric_shared/sample_metric.hpp"

namespace {

using namespace genfw;

class Fid : public Metric {
 public:
  static Schema schema() { return metric::extractor_schema(); }
  Fid(const Options& options, const BuildContext&) : options_(options) {}

  MetricResult compute(MetricContext& context) override {
    auto samples = metric::checked_samples(context, "metric 'fid'");
    auto extractor = metric::make_extractor(options_.extractor, context);
    auto ref = metric::reference_features(*extractor, context, options_.reference_split,
                                          options_.max_reference, options_.extractor.batch_size);
    auto features = extractor->extract(samples, context.device, options_.extractor.batch_size).features;
    auto stats = metric::gaussian_statistics(features);
    auto fid = metric::frechet_distance(stats, ref.statistics);
    MetricResult result;
    result.values["fid"] = fid.distance;
    metric::record_extractor(*extractor, result);
    metric::record_reference(ref, result);
    result.provenance["samples"] = std::to_string(features.size(0));
    result.provenance["feature_dim"] = std::to_string(features.size(1));
    result.provenance["estimator"] =
        std::string("frechet(float64, symmetric eigh sqrt, cov N-1") +
        (fid.used_offset ? ", eps=1e-6 offset applied)" : ")");
    return result;
  }

 private:
  metric::SampleMetricOptions options_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Fid>("fid", Kind::metric,
                    "Fréchet distance of feature Gaussians, samples vs real data (Heusel et al. 2017)");
}
