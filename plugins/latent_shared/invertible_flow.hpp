#pragma once
/// The bijection behind a DensityModel, for tests and tools that need z = f(x)
/// and its log-determinant (e.g. checking log|det J| against autograd). The
/// realnvp model implements it; reach it with dynamic_cast from genfw::Model
/// (BOOST_SYMBOL_VISIBLE keeps the type identity across the plugin boundary).
/// Candidate for the SDK as an optional part of the density capability.
#include <utility>

#include "genfw/export.hpp"
#include "genfw/component.hpp"

namespace genfw_latent {

class BOOST_SYMBOL_VISIBLE InvertibleFlow {
 public:
  virtual ~InvertibleFlow() = default;
  /// x [N, shape...] in data space → (z [N, D] flattened latent, log|det ∂z/∂x| [N]),
  /// every pre-processing Jacobian included (no dequantisation noise).
  virtual std::pair<torch::Tensor, torch::Tensor> to_latent(const torch::Tensor& x) = 0;
  /// Exact inverse: z [N, D] → x [N, shape...] in data space (no clamping or snapping).
  virtual torch::Tensor from_latent(const torch::Tensor& z) = 0;
};

}  // namespace genfw_latent
