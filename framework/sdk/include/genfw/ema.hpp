#pragma once
/// Exponential moving average of a module's parameters (Polyak averaging):
/// the trainer keeps one, and so may any plugin or test that trains.
#include <torch/torch.h>

#include <vector>

#include "genfw/export.hpp"

namespace genfw {

class GENFW_API Ema {
 public:
  Ema(torch::nn::Module& module, double decay);
  /// shadow ← decay·shadow + (1 − decay)·parameters.
  void update();
  /// The same with another decay for this update (e.g. an EMA warm-up).
  void update(double decay);
  /// Copies the averaged weights into the module.
  void copy_to(torch::nn::Module& module) const;
  std::vector<torch::Tensor>& shadow() { return shadow_; }

 private:
  std::vector<torch::Tensor> parameters_;  // the module's own tensors, in parameters() order
  double decay_;
  std::vector<torch::Tensor> shadow_;
};

}  // namespace genfw
