#pragma once
#include <map>
#include <string>

#include "genfw/dataset.hpp"
#include "genfw/model.hpp"

namespace genfw {

/// Inputs of a metric. Samples are float32 on CPU in data space.
struct MetricContext {
  Model* model = nullptr;
  torch::Tensor samples;
  Dataset* train_data = nullptr;
  Dataset* test_data = nullptr;
  DataInfo data;
  torch::Device device = torch::kCPU;
  std::string cache_dir;      ///< reference statistics and trained extractors live here
  uint64_t seed = 0;
};

/// Values (name → number; the first is the headline, e.g. "fid") and how they
/// were computed (extractor, its digest, sample counts, reference split,
/// estimator...). `runner compare` refuses to mix provenances in one column.
struct MetricResult {
  std::map<std::string, double> values;
  std::map<std::string, std::string> provenance;
};

class GENFW_API Metric : public Component {
 public:
  ~Metric() override;
  virtual MetricResult compute(MetricContext& context) = 0;
  /// False for metrics that only use the model (e.g. NLL): no samples drawn for them.
  virtual bool needs_samples() const { return true; }
};

}  // namespace genfw
