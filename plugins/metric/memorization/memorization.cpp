/// Memorization check: the share of samples that are near copies of a training
/// example in feature space, by the nearest-neighbour distance-ratio rule of
/// Yoon et al. 2023 (memorization.hpp), beside the share of real held-out test
/// examples the same rule flags: the rate a model that copies nothing reaches.
#include <limits>

#include "genfw/sdk.hpp"

#include "memorization.hpp"

namespace {

using namespace genfw;

class Memorization : public Metric {
 public:
  struct Settings {
    double ratio = 1.0 / 3.0;
    int64_t max_train = 0;
  };
  static const OptionBinding<Settings>& bound_options() {
    static const auto binding =
        OptionBinding<Settings>()
            .real("ratio", &Settings::ratio,
                  "a sample is memorized when its distance to the nearest training example is below ratio × its "
                  "distance to the second nearest (Yoon et al. 2023: 1/3)",
                  between(0.0, 1.0))
            .integer("max_train", &Settings::max_train,
                     "training examples searched (evenly strided); 0 = the whole train split. A copy of an example "
                     "left out is not found",
                     at_least(0));
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }
  Memorization(const Options& options, const BuildContext&) : settings_(bound_options().read(options)) {}

  // The host's floor examples are training images when the reference is the test split: the
  // rule flags them by definition. memorized_held_out is this metric's real-data rate instead.
  bool has_floor() const override { return false; }

  MetricResult compute(MetricContext& context) override {
    const std::string owner = "metric 'memorization'";
    GENFW_CHECK(context.train_data != nullptr && context.test_data != nullptr, owner,
                ": needs the train split (the examples a sample may copy) and the test split (real held-out "
                "examples, the rate the rule flags without copying)");
    FeatureService& service = features_of(context, owner);
    const torch::Tensor& samples = service.of(checked_samples(context, owner)).features;
    const int64_t max_train = settings_.max_train > 0 ? settings_.max_train : max_count;
    auto train = split_features(service, context, "train", max_train);
    GENFW_CHECK(train.count >= 2, owner, ": the distance-ratio rule needs at least 2 training examples, got ",
                train.count);
    auto held_out = split_features(service, context, "test", samples.size(0));
    auto train_features = train.features.to(context.device);
    MetricResult result;
    result.values["memorized"] =
        metric::fraction_memorized(samples.to(context.device), train_features, settings_.ratio);
    result.values["memorized_held_out"] =
        metric::fraction_memorized(held_out.features.to(context.device), train_features, settings_.ratio);
    result.describe("memorized", Better::lower);  // the held-out value is its floor: real data, not copies
    service.record_provenance(result, false);
    result.provenance["samples"] = std::to_string(samples.size(0));
    result.provenance["feature_dim"] = std::to_string(samples.size(1));
    result.provenance["train_searched"] = std::to_string(train.count) + " of " + std::to_string(train.split_size);
    result.provenance["held_out"] = std::to_string(held_out.count) + " test examples";
    result.provenance["rule"] = "memorized if d(x, NN1) < " + shortest_number(settings_.ratio) +
                                " * d(x, NN2), NN1 and NN2 the two nearest training examples in feature space "
                                "(Yoon et al. 2023; Gu et al. 2023)";
    return result;
  }

 private:
  static constexpr int64_t max_count = std::numeric_limits<int64_t>::max();

  // Features of up to `count` examples of a split, extracted as the reference's
  // are (evenly strided) and cached beside them.
  static metric::ReferenceFeatures split_features(FeatureService& service, const MetricContext& context,
                                                  const std::string& split, int64_t count) {
    return metric::reference_features(service.extractor(), context, split, count,
                                      service.settings().extractor.batch_size);
  }

  Settings settings_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<Memorization>(
      "memorization", Kind::metric,
      "Memorization check: memorized = share of samples whose nearest training example is under 1/3 of the "
      "distance to the second nearest, in feature space (the distance-ratio rule of Yoon et al. 2023, also Gu et "
      "al. 2023); memorized_held_out = the share of as many real test examples the rule flags, the value of a "
      "model that copies nothing. Searches the whole train split by default (extracted once, cached)");
}
