#pragma once
#include <map>
#include <string>

#include "genfw/dataset.hpp"
#include "genfw/model.hpp"

namespace genfw {
class FeatureService;
}

namespace genfw {

/// Inputs of a metric. Samples are float32 on CPU in data space.
struct MetricContext {
  Model* model = nullptr;
  torch::Tensor samples;
  torch::Tensor sample_labels;  ///< int64 [N] the class each sample was drawn for, or undefined
  Dataset* train_data = nullptr;
  Dataset* test_data = nullptr;
  DataInfo data;
  torch::Device device = torch::kCPU;
  std::string cache_dir;      ///< reference statistics and trained extractors live here
  uint64_t seed = 0;
  /// The run's one feature extractor ([features]) and what it extracted: the
  /// samples' and the reference data's features are computed once per run and
  /// shared by every metric that asks (genfw/features.hpp). Never nullptr in a run.
  FeatureService* features = nullptr;
};

/// Which way a metric value is better.
enum class Better { lower, higher };

/// Values (name → number; the first is the headline, e.g. "fid") and how they
/// were computed (extractor, its digest, sample counts, reference split,
/// estimator...). `runner compare` refuses to mix provenances in one column.
struct MetricResult {
  std::map<std::string, double> values;
  std::map<std::string, std::string> provenance;

  /// How `value` reads in a table: which way is better and its unit ("" for a pure
  /// number). Recorded with the provenance (keys better.NAME, unit.NAME); `runner
  /// compare` puts ↓ / ↑ and the unit in the column's header.
  void describe(const std::string& value, Better better, const std::string& unit = "") {
    provenance["better." + value] = better == Better::lower ? "lower" : "higher";
    if (!unit.empty()) provenance["unit." + value] = unit;
  }
};

class GENFW_API Metric : public Component {
 public:
  ~Metric() override;
  virtual MetricResult compute(MetricContext& context) = 0;
  /// False for metrics that only use the model (e.g. NLL): no samples drawn for them.
  virtual bool needs_samples() const { return true; }
  /// False for metrics whose real-data floor means nothing: the floor scores held-out real
  /// examples of the split other than the reference, which for a metric that measures the
  /// samples against the train split itself (memorization) are the very examples it searches.
  virtual bool has_floor() const { return true; }
};

/// The samples of `context`, refused (naming `owner`) when fewer than 2 or not finite.
GENFW_API torch::Tensor checked_samples(const MetricContext& context, const std::string& owner);

}  // namespace genfw
