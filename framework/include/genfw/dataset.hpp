#pragma once
#include "genfw/component.hpp"

namespace genfw {

/// A finite, indexable dataset. Every dataset plugin has a `split` option
/// ("train" / "test"); the runner builds the test split for metrics by
/// overriding it.
class GENFW_API Dataset : public Component {
 public:
  ~Dataset() override;
  virtual DataInfo info() const = 0;
  virtual int64_t size() const = 0;
  /// Samples at `indices` (int64, CPU), x as float32 in [info().low, info().high].
  virtual Batch get(const torch::Tensor& indices) = 0;
};

}  // namespace genfw
