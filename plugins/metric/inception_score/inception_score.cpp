/// Inception score (Salimans et al. 2016) with the extractor's class
/// probabilities: exp(E_x KL(p(y|x) ‖ p(y))), mean ± std over splits.
#include "genfw/sdk.hpp"

#include "inception_score.hpp"

namespace {

using namespace genfw;

class InceptionScore : public Metric {
 public:
  struct Settings {
    int64_t splits = 10;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>().integer("splits", &Settings::splits, "number of splits of the samples", at_least(1));
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  InceptionScore(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  MetricResult compute(MetricContext& context) override {
    FeatureService& service = features_of(context, "metric 'inception_score'");
    auto& extractor = service.extractor();
    GENFW_CHECK(extractor.has_probabilities() || service.settings().extractor.kind == "torchscript",
                "metric 'inception_score': extractor '", extractor.name,
                "' gives no class probabilities (vector data has no classifier); the inception score "
                "is not defined for it");
    const auto& out = service.of(checked_samples(context, "metric 'inception_score'"));
    GENFW_CHECK(out.probabilities.defined(), "metric 'inception_score': extractor '", extractor.name,
                "' gives no class probabilities (a TorchScript module must return (features, logits))");
    auto is = metric::inception_score(out.probabilities, settings_.splits);
    MetricResult result;
    result.values["inception_score"] = is.mean;
    result.values["inception_score_std"] = is.std;
    result.describe("inception_score", Better::higher);
    service.record_provenance(result, false);
    result.provenance["samples"] = std::to_string(out.probabilities.size(0));
    result.provenance["classes"] = std::to_string(out.probabilities.size(1));
    result.provenance["estimator"] = "exp(E KL(p(y|x)||p(y))), float64, " + std::to_string(is.splits) + " splits";
    return result;
  }

 private:
  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<InceptionScore>("inception_score", Kind::metric,
                               "Inception score exp(E KL(p(y|x) || p(y))) (Salimans et al. 2016). Needs class "
                               "probabilities (the in-domain classifier, or Inception's logits for papers): for "
                               "class-structured images only; at most the number of classes; higher is better");
}
