#pragma once
#include "genfw/component.hpp"

namespace genfw {

/// A finite, indexable dataset. The framework builds it once per split it
/// needs (BuildContext::split: "train" for training, "test" for metrics), from
/// the same [data] table.
class GENFW_API Dataset : public Component {
 public:
  ~Dataset() override;
  virtual DataInfo info() const = 0;
  virtual int64_t size() const = 0;
  /// Samples at `indices` (int64, CPU), x as float32 in [info().low, info().high].
  virtual Batch get(const torch::Tensor& indices) = 0;
};

}  // namespace genfw
